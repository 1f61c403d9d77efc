"""The embedded AWS's heap: what moto no longer uses is freed, and a full collection walks only
what is new.

- moto's ``BaseModel`` appends every model instance it makes to a list on its class (for its
  dashboard and its reset): every ``Item`` a Query copies or projects, every SQS message,
  every S3 key ever overwritten stayed for good. The emulator grew by 64 MB for every 1,000
  study pages served. ``untrack_models`` (installed by ``moto_fixes``) stops the lists; moto's
  ``/moto-api/data.json`` dashboard then lists no instances.
- moto keeps each stored item as Python objects (an ``Item``, its dict, and a ``DynamoType``
  with its dict per attribute): 100,000 instances are millions of objects the cyclic garbage
  collector tracks. Python walks every one of them in each full collection, holding the
  interpreter's lock, and runs one each time the objects it tracks grow by a quarter: while
  100,000 instances were loaded, collections took up to 2 s, and no request was answered
  meanwhile. After a full collection that leaves ``FREEZE_AT`` objects or more, ``install``
  freezes them (``gc.freeze``): later collections walk only what came after. What is frozen is
  never collected as a cycle. moto's items, objects and messages hold none and are freed when
  they go (``tests/local/test_heap.py`` checks); what the requests in flight at that moment
  held (tens of objects each) stays. Installed by ``python -m local``, the process that holds
  the archive.
"""

from __future__ import annotations

import gc
from typing import Any

from moto.core.common_models import BaseModel
from moto.core.model_instances import reset_model_data

# Loading 100,000 instances, a request then waited 217 ms at most (560 ms with 500,000, 2,140
# without freezing). Each freeze keeps what the requests in flight held: about 500 objects with
# 10 requests, in the one count made.
FREEZE_AT = 100_000


def install() -> None:
    """Freeze what a full collection leaves once it is ``FREEZE_AT`` objects or more (idempotent)."""
    if _collected not in gc.callbacks:
        gc.callbacks.append(_collected)


def uninstall() -> None:
    if _collected in gc.callbacks:
        gc.callbacks.remove(_collected)


def _collected(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2 and len(gc.get_objects(generation=2)) >= FREEZE_AT:
        gc.freeze()


def untrack_models() -> None:
    """Stop moto keeping every model instance it ever made (idempotent)."""
    BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[method-assign]  # the fix itself
    reset_model_data()


def _untracked_new(cls: type[BaseModel], *args: Any, **kwargs: Any) -> Any:
    return super(BaseModel, cls).__new__(cls)  # BaseModel's own, without the append
