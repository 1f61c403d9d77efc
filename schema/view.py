"""The Flask view serving the schema, and the one place errors become GraphQL errors."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

# Strawberry raises cross_web's HTTPException and re-exports it nowhere public.
from cross_web import HTTPException as StrawberryHTTPException
from flask import Request, Response, abort
from flask import request as flask_request
from graphql import GraphQLError
from strawberry.flask.views import GraphQLView
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from errors import INTERNAL_MESSAGE, DicomMetaError, scrubbed_traceback
from schema import graphiql
from schema.types import Context
from web.request_id import current_request_id

if TYPE_CHECKING:
    from managers.bundle import Managers
    from resolvers.paging import Cursors

log = logging.getLogger(__name__)


class DicomMetaGraphQLView(GraphQLView[Context, None]):
    """Strawberry's view with our context, scrubbed errors, the contract's HTTP errors and
    a GraphiQL page on local assets (Strawberry's CDN page when ``local_graphiql`` is False)."""

    def __init__(self, managers: Managers, cursors: Cursors, local_graphiql: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.managers = managers
        self.cursors = cursors
        self.local_graphiql = local_graphiql

    def render_graphql_ide(self, request: Request) -> Response:
        if self.local_graphiql:
            return graphiql.render_page()
        return super().render_graphql_ide(request)

    def get_context(self, request: Request, response: Response) -> Context:
        return Context(
            managers=self.managers,
            cursors=self.cursors,
            request_id=current_request_id(),
            dicomweb_url=flask_request.root_url.rstrip("/") + "/dicomweb",
        )

    def dispatch_request(self) -> Any:
        try:
            return self.run(request=flask_request)
        except StrawberryHTTPException as exc:
            # Malformed bodies, wrong methods: answered by the app's one HTTP error handler
            # in the contract's JSON format, not as Strawberry's plain text.
            abort(_status_of(exc), description=exc.reason)

    def decode_json(self, data: str | bytes) -> object:
        try:
            return super().decode_json(data)
        except RecursionError as exc:  # json.loads recurses once per level of nesting
            raise StrawberryHTTPException(400, "the body is nested too deeply to be read as JSON") from exc

    def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = super().process_result(request, result)
        if result.errors:
            response["errors"] = [format_error(error, current_request_id()) for error in result.errors]
        return response


def _status_of(exc: StrawberryHTTPException) -> int:
    # Strawberry answers 400 to a body that is not JSON, GET or multipart; the contract
    # calls that 415.
    return 415 if exc.reason == "Unsupported content type" else exc.status_code


def format_error(error: GraphQLError, request_id: str) -> dict[str, Any]:
    """Give a GraphQL error its ``extensions.code``; hide anything unexpected."""
    original = error.original_error
    formatted = dict(error.formatted)
    if isinstance(original, DicomMetaError):
        formatted["message"] = original.message
        code = original.code
    elif original is None or error.path is None:
        # graphql-core's own parse and validation errors, and variables that do not fit their
        # types (a scalar's parser raised: an error with a cause but outside any field's
        # path): the message helps the client, and it is theirs, so it is not logged.
        code = "GRAPHQL_VALIDATION_FAILED"
    else:
        log.error("unexpected error in a resolver (request %s)\n%s", request_id, scrubbed_traceback(original))
        formatted["message"] = INTERNAL_MESSAGE
        code = "INTERNAL"
    formatted["extensions"] = {"code": code, "request_id": request_id}
    return formatted
