"""Write the schema's SDL to ``docs/schema.graphql`` (``make docs``); ``tests/test_docs.py``
fails while the file differs from the served schema."""

from __future__ import annotations

import sys
from pathlib import Path

from schema import schema

SDL_FILE = Path(__file__).resolve().parent.parent / "docs" / "schema.graphql"


def sdl() -> str:
    """Return the served schema in GraphQL SDL, as ``docs/schema.graphql`` holds it."""
    return str(schema).rstrip("\n") + "\n"


def main() -> int:
    """Write ``docs/schema.graphql``; say whether it changed."""
    text = sdl()
    changed = not SDL_FILE.is_file() or SDL_FILE.read_text(encoding="utf-8") != text
    SDL_FILE.write_text(text, encoding="utf-8")
    print(f"{SDL_FILE.relative_to(SDL_FILE.parent.parent)}: {'written' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
