"""The GraphiQL page, served with its own scripts and styles so it works without internet.

Hospital networks are often closed: a page loading GraphiQL from a CDN is blank there. The
assets come from the npm packages pinned in package.json (`npm ci` puts them under
node_modules/) and are served under ``/static/graphiql/`` from an allow-list, never by path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, render_template, send_from_directory

from schema.examples import EXAMPLE_QUERY, example_variables

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
DEFAULT_NODE_MODULES = HERE.parent / "node_modules"
URL_PREFIX = "/static/graphiql"

# URL name -> file under node_modules/. UMD builds: they run as plain <script> tags, with
# no bundler and no import map (GraphiQL 4 and later ship only ES modules).
VENDOR_ASSETS: dict[str, str] = {
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "plugin-explorer.umd.js": "@graphiql/plugin-explorer/dist/index.umd.js",
    "plugin-explorer.css": "@graphiql/plugin-explorer/dist/style.css",
}
# Our own script and style, kept out of the HTML so the page's CSP needs no inline script.
OWN_ASSETS: tuple[str, ...] = ("dicom-meta-graphiql.js", "dicom-meta-graphiql.css")

# The browser may fetch only from this origin. GraphiQL sets inline styles on its elements,
# and its fonts and icons are data: URLs inside graphiql.min.css.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    )
)


def missing_assets(node_modules: Path) -> list[str]:
    """Return the vendor files absent from ``node_modules`` (all of them when it is absent)."""
    return [path for path in VENDOR_ASSETS.values() if not (node_modules / path).is_file()]


def register(app: Flask, node_modules: Path) -> bool:
    """Serve the assets under ``/static/graphiql/``; return False, logged once, when absent."""
    missing = missing_assets(node_modules)
    if missing:
        log.warning(
            "GraphiQL falls back to Strawberry's page, which loads its scripts from a CDN and "
            "stays blank without internet: %d asset(s) missing under %s (first: %s). "
            "Install Node.js and npm, then run `make run` again (it runs `npm ci`).",
            len(missing),
            node_modules,
            missing[0],
        )
        return False
    app.register_blueprint(_assets_blueprint(node_modules))
    return True


def _assets_blueprint(node_modules: Path) -> Blueprint:
    """Return the blueprint serving the allow-listed files and holding the page's template."""
    bp = Blueprint("graphiql", __name__, url_prefix=URL_PREFIX, template_folder="templates")

    @bp.get("/<name>")
    def asset(name: str) -> Response:
        """Send one allow-listed file; anything else is a 404."""
        if name in VENDOR_ASSETS:
            return send_from_directory(node_modules, VENDOR_ASSETS[name])
        if name in OWN_ASSETS:
            return send_from_directory(HERE / "static", name)
        abort(404)

    return bp


def render_page() -> Response:
    """Render the GraphiQL page on the local assets, with the CSP that keeps it local."""
    example = {"query": EXAMPLE_QUERY, "variables": json.dumps(example_variables(), indent=2)}
    html = render_template("graphiql.html", url_prefix=URL_PREFIX, example=example)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
