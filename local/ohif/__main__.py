"""``python -m local.ohif``: the OHIF viewer on http://127.0.0.1:3000 (``OHIF_PORT``) in front of
the service at http://127.0.0.1:5000 (``PORT``); Ctrl-C stops it."""

from __future__ import annotations

import os
import threading

from local.ohif import serve


def main() -> None:
    api = f"http://127.0.0.1:{os.environ.get('PORT', '5000')}"
    server = serve(api, int(os.environ.get("OHIF_PORT", "3000")), os.environ.get("OHIF_API_KEY") or None)
    print(f"OHIF on http://127.0.0.1:{server.server_address[1]}, reading {api}/dicomweb (Ctrl-C stops it)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
