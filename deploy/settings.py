"""Print, as shell assignments, what the deploy scripts need from the repository.

``names``: the region and resource names of ``config.py`` (the one place they live).
``credentials``: ``export`` lines for the keys of ``secrets.json``, nothing when it is absent
(the AWS CLI then uses its standard chain: environment, ``AWS_PROFILE``, SSO, a role).

Standard library only, so any ``python3`` runs it; the scripts ``eval`` its output.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# config.py constant -> the shell variable the scripts use.
NAMES = {
    "AWS_REGION": "REGION",
    "S3_BUCKET_NAME": "BUCKET",
    "DYNAMODB_TABLE_NAME": "TABLE",
    "LAMBDA_ROLE_NAME": "ROLE",
    "LAMBDA_FUNCTION_NAME": "FUNCTION",
}
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def name_assignments() -> list[str]:
    """Return ``REGION=…`` and the other names, read from ``config.py``."""
    sys.path.insert(0, str(ROOT))
    import config

    return [f"{shell}={shlex.quote(str(getattr(config, constant)))}" for constant, shell in NAMES.items()]


def credential_exports(path: Path) -> list[str]:
    """Return ``export`` lines for the credentials of ``path``; none when the file is absent.

    A session token in the environment that the file does not carry is removed: it belongs
    to other keys and would make every call fail with an invalid-token error.
    """
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    missing = [key for key in SECRET_KEYS[:2] if not data.get(key)]
    if missing:
        raise SystemExit(f"{path.name} lacks {', '.join(missing)}")
    lines = [f"export {key}={shlex.quote(data[key])}" for key in SECRET_KEYS if data.get(key)]
    if not data.get("AWS_SESSION_TOKEN"):
        lines.append("unset AWS_SESSION_TOKEN")
    # Explicit keys must win over a profile the shell happens to have selected.
    lines.append("unset AWS_PROFILE")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("names")
    creds = sub.add_parser("credentials")
    creds.add_argument("secrets_file", type=Path)
    args = parser.parse_args()
    lines = name_assignments() if args.command == "names" else credential_exports(args.secrets_file)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
