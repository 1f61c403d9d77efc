"""Build a Lambda package: the handler at the zip root, plus the repository modules it
imports, found by following its import statements, plus the pure-Python packages that handler
is allowed to ship (the indexer's pydicom).

Computing the list (instead of writing it down) keeps the package right as the handler
changes; refusing imports the Lambda runtime lacks keeps Flask and requests out of both
packages and pydicom out of the ingest one. Standard library only, so any ``python3`` runs it;
vendoring copies a package from the interpreter's own site-packages, so build the indexer
with the project's ``.venv/bin/python`` (the deploy script does).

Usage: ``python3 deploy/build_lambda_zip.py [--function ingest|indexer] [--out ZIP] [--list]``
"""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import importlib.metadata
import importlib.util
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLER = ROOT / "lambda" / "lambda_function.py"
DEFAULT_OUT = ROOT / "build" / "lambda.zip"

# The two functions: their handler file and where their zip goes by default.
FUNCTIONS = {
    "ingest": (HANDLER, DEFAULT_OUT),
    "indexer": (ROOT / "lambda" / "indexer_function.py", ROOT / "build" / "indexer.zip"),
}

# What the Lambda Python runtime provides besides the standard library. Anything else the
# handler imports would have to be shipped, and nothing else is meant to be.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore"})

# Pure-Python packages a handler may ship in its zip, by handler file name. Only the indexer
# parses DICOM; the ingest function reads JSON and stays free of pydicom.
VENDORABLE: dict[str, frozenset[str]] = {"indexer_function.py": frozenset({"pydicom"})}

# Sub-packages of a vendored package that header reads never import: pydicom's Structured
# Reporting code dictionaries (6 MB of source) and its command-line tools. Of the other files
# only ``.py`` ones are copied, so pydicom's 3 MB of test files, charset samples and palettes
# stay out, except the data files read on import: ``import pydicom`` looks up its example
# files, and without ``urls.json`` that lookup fails (with it, a missing example is just None;
# none of them is a download, so no cold start touches the network).
VENDOR_SKIPPED = {"pydicom": frozenset({"sr", "cli"})}
VENDOR_DATA = {"pydicom": ("data/urls.json",)}

# Fixed timestamps and modes: the same sources give the same zip byte for byte, hence the
# same CodeSha256, so a deploy that changed nothing can be seen to have changed nothing.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16


@dataclass
class Package:
    """What a zip holds: repository files (handler first) and the vendored package names."""

    files: list[Path]
    vendored: set[str] = field(default_factory=set)


def imported_names(path: Path) -> set[str]:
    """Return every dotted name ``path`` imports; ``from a import b`` gives ``a`` and ``a.b``.

    ``a.b`` may be a submodule or just an attribute; the caller keeps it only if it is a file.
    Imports inside functions count too: they run in the Lambda all the same. Imports under
    ``if TYPE_CHECKING:`` do not: they never run.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            node.body = []
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


def _is_type_checking(test: ast.expr) -> bool:
    """Tell whether an ``if`` tests ``TYPE_CHECKING`` (or ``typing.TYPE_CHECKING``)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


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


def check_available(name: str, importer: Path, vendorable: frozenset[str] = frozenset()) -> bool:
    """Refuse an import the Lambda runtime cannot satisfy; return True when it is to be vendored."""
    top = name.split(".")[0]
    if top in vendorable:
        return True
    if is_repo_module(top) or top in sys.stdlib_module_names or top in RUNTIME_PROVIDED:
        return False
    raise SystemExit(
        f"{shown(importer)} imports {name!r}, which the Lambda runtime lacks "
        f"(it has the standard library and {', '.join(sorted(RUNTIME_PROVIDED))})"
    )


def package_files(handler: Path = HANDLER, vendorable: frozenset[str] | None = None) -> Package:
    """Return the handler, every repository file it imports (directly or not), and what to vendor.

    Parent packages come along (``managers/__init__.py`` for ``managers.aws.clients``): Python runs
    them on import, so their own imports are followed too. A vendored package's own imports
    are not followed: it is copied whole (see ``vendored_files``).
    """
    allowed = VENDORABLE.get(handler.name, frozenset()) if vendorable is None else vendorable
    package = Package([handler])
    queue = [handler]
    while queue:
        current = queue.pop()
        for name in sorted(imported_names(current)):
            if check_available(name, current, allowed):
                package.vendored.add(name.split(".")[0])
                continue
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                path = repo_file(".".join(parts[:depth]))
                if path is not None and path not in package.files:
                    package.files.append(path)
                    queue.append(path)
    return package


def vendored_files(name: str) -> dict[str, Path]:
    """Return ``{archive name: installed file}`` for a vendored package and its licence.

    Refused: a package that is not installed, has compiled extensions (the zip must run on
    any Lambda architecture) or requires other packages.
    """
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed in {sys.executable}; build with the project's .venv/bin/python")
    root = Path(next(iter(spec.submodule_search_locations)))
    if any(path.suffix in (".so", ".pyd") for path in root.rglob("*")):
        raise SystemExit(f"{name} has compiled extensions; only pure-Python packages are vendored")
    distribution = importlib.metadata.distribution(name)
    required = [r for r in distribution.requires or [] if "extra ==" not in r]
    if required:
        raise SystemExit(f"{name} requires {', '.join(required)}; only self-contained packages are vendored")
    skipped = VENDOR_SKIPPED.get(name, frozenset())
    files = {
        f"{name}/{path.relative_to(root).as_posix()}": path
        for path in root.rglob("*.py")
        if path.relative_to(root).parts[0] not in skipped
    }
    files.update({f"{name}/{data}": root / data for data in VENDOR_DATA.get(name, ())})
    # The licence travels with the code (pydicom's MIT licence asks for it).
    for entry in distribution.files or []:
        if "LICENSE" in entry.name.upper() or entry.name == "METADATA":
            files[entry.as_posix()] = Path(str(distribution.locate_file(entry)))
    return files


def archive_name(path: Path, handler: Path = HANDLER) -> str:
    """The handler goes to the zip root (``lambda_function.lambda_handler``); others keep their path."""
    return path.name if path == handler else path.relative_to(ROOT).as_posix()


def build(out: Path = DEFAULT_OUT, handler: Path = HANDLER, vendorable: frozenset[str] | None = None) -> list[str]:
    """Write the zip at ``out``; return the names it holds, sorted."""
    package = package_files(handler, vendorable)
    sources = {archive_name(path, handler): path for path in package.files}
    for name in sorted(package.vendored):
        sources.update(vendored_files(name))
    names = sorted(sources)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, sources[name].read_bytes())
    return names


def listing(names: list[str], vendored: set[str]) -> list[str]:
    """The names to show: repository files one by one, each vendored package as one line."""
    shown_names = [n for n in names if n.split("/")[0] not in vendored and ".dist-info/" not in n]
    for name in sorted(vendored):
        count = sum(1 for n in names if n.startswith(f"{name}/"))
        shown_names.append(f"{name}/ (vendored {name} {importlib.metadata.version(name)}, {count} files)")
    return shown_names


def main() -> None:
    parser = argparse.ArgumentParser(description="Build a Lambda zip from its handler's imports.")
    parser.add_argument("--function", choices=sorted(FUNCTIONS), default="ingest")
    parser.add_argument("--out", type=Path, help="default: build/lambda.zip or build/indexer.zip")
    parser.add_argument("--list", action="store_true", help="only list the files the zip would hold")
    args = parser.parse_args()
    handler, default_out = FUNCTIONS[args.function]
    package = package_files(handler)
    if args.list:
        print("\n".join(sorted(archive_name(path, handler) for path in package.files)))
        return
    out = args.out or default_out
    names = build(out, handler)
    for name in listing(names, package.vendored):
        print(name)
    size = out.stat().st_size
    digest = base64.b64encode(hashlib.sha256(out.read_bytes()).digest()).decode()
    # The last word is the digest as Lambda reports it (CodeSha256), for the deploy script.
    print(f"{len(names)} files, {size} bytes ({size / 1024:.1f} KiB), sha256 {digest}")


if __name__ == "__main__":
    main()
