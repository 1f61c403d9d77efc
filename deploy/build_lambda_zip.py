"""Build the Lambda package: ``lambda_function.py`` at the zip root, plus the repository modules
it imports, found by following its import statements.

Computing the list (instead of writing it down) keeps the package right as the handler
changes; refusing imports the Lambda runtime lacks keeps Flask, pydicom and requests out of
it. Standard library only, so any ``python3`` runs it.

Usage: ``python3 deploy/build_lambda_zip.py [--out build/lambda.zip] [--list]``
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "lambda" / "lambda_function.py"
DEFAULT_OUT = ROOT / "build" / "lambda.zip"

# What the Lambda Python runtime provides besides the standard library. Anything else the
# handler imports would have to be shipped, and nothing else is meant to be.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore"})

# Fixed timestamps and modes: the same sources give the same zip byte for byte, hence the
# same CodeSha256, so a deploy that changed nothing can be seen to have changed nothing.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16


def imported_names(path: Path) -> set[str]:
    """Return every dotted name ``path`` imports; ``from a import b`` gives ``a`` and ``a.b``.

    ``a.b`` may be a submodule or just an attribute; the caller keeps it only if it is a file.
    Imports inside functions count too: they run in the Lambda all the same.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise SystemExit(f"{shown(path)}: relative import; use an absolute one")
            assert node.module is not None
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def shown(path: Path) -> str:
    """A path as a message shows it: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def repo_file(module: str) -> Path | None:
    """Return the repository file that defines ``module``, or ``None`` when there is none."""
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def is_repo_module(top_level: str) -> bool:
    return (ROOT / f"{top_level}.py").is_file() or (ROOT / top_level).is_dir()


def check_available(name: str, importer: Path) -> None:
    """Refuse an import the Lambda runtime cannot satisfy."""
    top = name.split(".")[0]
    if is_repo_module(top) or top in sys.stdlib_module_names or top in RUNTIME_PROVIDED:
        return
    raise SystemExit(
        f"{shown(importer)} imports {name!r}, which the Lambda runtime lacks "
        f"(it has the standard library and {', '.join(sorted(RUNTIME_PROVIDED))})"
    )


def package_files(handler: Path = HANDLER) -> list[Path]:
    """Return the handler and every repository file it imports, directly or not.

    Parent packages come along (``managers/__init__.py`` for ``managers.aws``): Python runs
    them on import, so their own imports are followed too.
    """
    found: list[Path] = [handler]
    queue = [handler]
    while queue:
        current = queue.pop()
        for name in sorted(imported_names(current)):
            check_available(name, current)
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                path = repo_file(".".join(parts[:depth]))
                if path is not None and path not in found:
                    found.append(path)
                    queue.append(path)
    return found


def archive_name(path: Path, handler: Path = HANDLER) -> str:
    """The handler goes to the zip root (``lambda_function.lambda_handler``); others keep their path."""
    return path.name if path == handler else path.relative_to(ROOT).as_posix()


def build(out: Path = DEFAULT_OUT, handler: Path = HANDLER) -> list[str]:
    """Write the zip at ``out``; return the names it holds, sorted."""
    sources = {archive_name(path, handler): path for path in package_files(handler)}
    names = sorted(sources)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, sources[name].read_bytes())
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description="Build the Lambda zip from the handler's imports.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--list", action="store_true", help="only list the files the zip would hold")
    args = parser.parse_args()
    if args.list:
        print("\n".join(sorted(archive_name(path) for path in package_files())))
        return
    names = build(args.out)
    for name in names:
        print(name)
    size = args.out.stat().st_size
    digest = base64.b64encode(hashlib.sha256(args.out.read_bytes()).digest()).decode()
    # The last word is the digest as Lambda reports it (CodeSha256), for the deploy script.
    print(f"{len(names)} files, {size} bytes ({size / 1024:.1f} KiB), sha256 {digest}")


if __name__ == "__main__":
    main()
