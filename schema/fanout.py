"""A bound on the size of a GraphQL document once its fragments are expanded, checked first.

Fragments multiply: ``fragment F0 on Query { ...F1 ...F1 }`` and so on, 22 levels deep, is
190 tokens and expands to four million fields. graphql-core's validation (overlapping fields)
and Strawberry's depth limiter walk the expansion, so such a document held a worker for
seconds to minutes. This counts the expanded fields without expanding anything (each
fragment's count is computed once and reused) and refuses the document before any other
validation runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import SchemaExtension

# Fields a document may hold after its fragments are expanded. GraphiQL's introspection query,
# the largest document a client sends, expands to a few hundred.
MAX_EXPANDED_FIELDS = 2000


class ExpandedSizeLimiter(SchemaExtension):
    """Refuse a document whose fragments expand to more than ``max_fields`` fields.

    Runs when validation starts and, on refusal, sets the validation errors itself, so the
    other validation rules (and the limiters that are validation rules) never walk it.
    """

    def __init__(self, max_fields: int = MAX_EXPANDED_FIELDS) -> None:
        self.max_fields = max_fields

    def on_validate(self) -> Iterator[None]:
        document = self.execution_context.graphql_document
        if document is not None and expanded_size(document, self.max_fields) > self.max_fields:
            # Strawberry skips its own validation when errors are already set.
            self.execution_context.pre_execution_errors = [
                GraphQLError(
                    f"the document expands to more than {self.max_fields} fields once its fragments are "
                    "expanded; send fewer fragment spreads"
                )
            ]
        yield


def expanded_size(document: DocumentNode, cap: int) -> int:
    """Return the fields of ``document``'s definitions with fragments expanded, or ``cap + 1`` past ``cap``.

    Unknown and cyclic spreads count as nothing: validation reports them.
    """
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    sizes: dict[str, int] = {}
    visiting: set[str] = set()

    def fragment_size(name: str) -> int:
        if name in sizes:
            return sizes[name]
        if name in visiting or name not in fragments:
            return 0
        visiting.add(name)
        size = selection_size(fragments[name].selection_set)
        visiting.discard(name)
        sizes[name] = size
        return size

    def selection_size(selection_set: SelectionSetNode | None) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += 1 + selection_size(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += selection_size(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += fragment_size(selection.name.value)
            if total > cap:
                return cap + 1
        return total

    try:
        total = 0
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                total += selection_size(definition.selection_set)
            if total > cap:
                return cap + 1
        # Fragments no operation reaches count too: validation walks every definition.
        for name in fragments:
            if name not in sizes:
                total += fragment_size(name)
            if total > cap:
                return cap + 1
        return total
    except RecursionError:  # nesting the parser accepted but this walk cannot: too big anyway
        return cap + 1
