"""Per-request batching: the keys of one level of a query loaded with one call, not one per item.

Why not Strawberry's ``DataLoader``: its ``load`` returns an awaitable, which only async
execution can wait for. This view is sync (``GraphQLView``, ``execute_sync``) on gthread
workers with blocking boto3 clients: Strawberry's ``AsyncGraphQLView`` would run each request
in an event loop that the batch's blocking read holds anyway, and change how every other
field, extension and test runs, to gain only the batching. In sync execution graphql-core
completes a list item by item, so a loader cannot wait for its siblings to ask; the parent
that built the level knows them instead. Each item carries its level's keys, and the first
item to load fetches them all in one call; its siblings find their values cached.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Generic, TypeVar

import resolvers
from errors import InvalidArgument

if TYPE_CHECKING:
    from managers.bundle import Managers
    from managers.store.study_records import SeriesRecord

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LevelLoader(Generic[K, V]):
    """Load values by key, a whole level at a time, each key at most once per request.

    Parameters
    ----------
    load_many
        Returns the values of the keys it is given (a key without a value may be left out).
    """

    def __init__(self, load_many: Callable[[list[K]], Mapping[K, V]]) -> None:
        self._load_many = load_many
        self._cache: dict[K, V | None] = {}
        # A failed batch fails each of its keys once, not once per key: under an outage the
        # siblings would otherwise each wait for their own timeout.
        self._failed: dict[K, Exception] = {}

    def load(self, key: K, level: Iterable[K] = ()) -> V | None:
        """Return the value of ``key`` (``None`` when there is none).

        On a miss, ``key`` and the keys of ``level`` not loaded yet are loaded in one call.

        Raises
        ------
        Exception
            Whatever ``load_many`` raised for the batch that held ``key``.
        """
        if key in self._failed:
            raise self._failed[key]
        if key not in self._cache:
            batch = [k for k in dict.fromkeys([key, *level]) if k not in self._cache and k not in self._failed]
            try:
                found = self._load_many(batch)
            except Exception as exc:
                self._failed.update(dict.fromkeys(batch, exc))
                raise
            self._cache.update((k, found.get(k)) for k in batch)
        return self._cache[key]


class Loaders:
    """The loaders of one request; built with its context, never shared between requests."""

    def __init__(self, managers: Managers) -> None:
        self.series_of_study: LevelLoader[str, list[SeriesRecord]] = LevelLoader(
            lambda study_uids: resolvers.series_of_studies(managers, study_uids)
        )


class RequestBudget:
    """What one request may read through nested lists, whose page sizes multiply.

    ``studies(first: 200) { series { instances(first: 1000) { metadata { dicomJson } } } }``
    passes the depth, alias and token limits yet asks for millions of rows and S3 reads: each
    field that reads per item spends from the request's budget, and a request that would
    overspend is refused with ``INVALID_ARGUMENT`` before the read.
    """

    LIMITS = {"instances": 5_000, "dicomJson": 500}

    def __init__(self) -> None:
        self.spent = dict.fromkeys(self.LIMITS, 0)

    def spend(self, what: str, amount: int) -> None:
        """Count ``amount`` reads of ``what``; raise ``InvalidArgument`` past its limit."""
        if self.spent[what] + amount > self.LIMITS[what]:
            raise InvalidArgument(
                f"this query reads more than {self.LIMITS[what]} {what} in one request; ask for smaller pages"
            )
        self.spent[what] += amount
