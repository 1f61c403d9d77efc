"""The study and series counters, kept exact as instances come and go (items: ``managers.store.study_items``).

Counts are exact because an instance's record and the counters move in one
``TransactWriteItems``: the record's write is conditional on the record read before it, and the
counters move by the difference between what that record and the new one count for
(``membership``). A duplicate event counts nothing; an event that lost a race is cancelled
whole and decided again. Search keys are written after the transaction (``Aggregates.settle``),
from the study item as it then is.

Standard library and boto3 only: the indexer function's package carries this module.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from errors import UpstreamUnavailable
from managers.aws.clients import error_code, upstream
from managers.store.study_items import (
    MODALITY_COUNTER,
    SERIES_COUNTER,
    SERIES_INSTANCES,
    STUDY_INSTANCES,
    TOKEN_KEYS,
    TOKEN_PRINT,
    Membership,
    membership,
    series_key,
    study_key,
    token_items,
    token_print,
)
from managers.store.table import PARTITION_KEY, SERIES_STUDY

if TYPE_CHECKING:
    from managers.DynamoDBManager import DynamoDBManager


@dataclass
class StudyChange:
    """How one study's counters move, and the values of a study or series gaining an instance."""

    instances: int = 0
    series: Counter[str] = field(default_factory=Counter)
    modalities: Counter[str] = field(default_factory=Counter)
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class SeriesChange:
    study: str
    instances: int = 0
    values: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class Changes:
    """The counter moves of a set of record writes, merged per study and per series."""

    studies: dict[str, StudyChange] = field(default_factory=dict)
    series: dict[str, SeriesChange] = field(default_factory=dict)

    def add(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
        """Count one record going from ``old`` to ``new``; return whether any counter moves."""
        before, after = membership(old), membership(new)
        if before == after:
            return False
        for member, sign in ((before, -1), (after, 1)):
            if member is not None:
                self._count(member, sign)
        return True

    def _count(self, member: Membership, sign: int) -> None:
        study = self.studies.setdefault(member.study, StudyChange())
        study.instances += sign
        study.series[member.series] += sign
        if member.modality:
            study.modalities[member.modality] += sign
        series = self.series.setdefault(member.series, SeriesChange(member.study))
        series.instances += sign
        if sign > 0:
            # The first instance added in this write gives the values not yet stored.
            study.values = study.values or member.study_values
            series.values = series.values or member.series_values

    def actions(self, table: str) -> list[dict[str, Any]]:
        """Return the ``TransactWriteItems`` updates that apply these moves."""
        updates = [_study_update(table, uid, change) for uid, change in self.studies.items()]
        updates += [_series_update(table, uid, change) for uid, change in self.series.items()]
        return [update for update in updates if update is not None]


def _study_update(table: str, uid: str, change: StudyChange) -> dict[str, Any] | None:
    expression = _Expression()
    expression.add(STUDY_INSTANCES, change.instances)
    for series, moved in change.series.items():
        expression.add(f"{SERIES_COUNTER}{series}", moved)
    for modality, moved in change.modalities.items():
        expression.add(f"{MODALITY_COUNTER}{modality}", moved)
    expression.set("StudyInstanceUID", {"S": uid})
    for name, value in change.values.items():
        expression.set_first(name, {"S": value})
    return expression.update(table, study_key(uid))


def _series_update(table: str, uid: str, change: SeriesChange) -> dict[str, Any] | None:
    expression = _Expression()
    expression.add(SERIES_INSTANCES, change.instances)
    expression.set("SeriesInstanceUID", {"S": uid})
    expression.set_first("StudyInstanceUID", {"S": change.study})
    expression.set_first(SERIES_STUDY, {"S": change.study})
    for name, value in change.values.items():
        expression.set_first(name, value)
    return expression.update(table, series_key(uid))


class _Expression:
    """An UpdateExpression built clause by clause, its names and values numbered."""

    def __init__(self) -> None:
        self.adds: list[str] = []
        self.sets: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def _name(self, attribute: str) -> tuple[str, str]:
        position = len(self.names)
        self.names[f"#a{position}"] = attribute
        return f"#a{position}", f":a{position}"

    def add(self, attribute: str, amount: int) -> None:
        if amount:
            name, value = self._name(attribute)
            self.adds.append(f"{name} {value}")
            self.values[value] = {"N": str(amount)}

    def set(self, attribute: str, value: dict[str, str]) -> None:
        name, placeholder = self._name(attribute)
        self.sets.append(f"{name} = {placeholder}")
        self.values[placeholder] = value

    def set_first(self, attribute: str, value: dict[str, str]) -> None:
        name, placeholder = self._name(attribute)
        self.sets.append(f"{name} = if_not_exists({name}, {placeholder})")
        self.values[placeholder] = value

    def update(self, table: str, key: str) -> dict[str, Any] | None:
        if not self.adds:
            return None
        clauses = f"ADD {', '.join(self.adds)}" + (f" SET {', '.join(self.sets)}" if self.sets else "")
        return {
            "Update": {
                "TableName": table,
                "Key": {PARTITION_KEY: {"S": key}},
                "UpdateExpression": clauses,
                "ExpressionAttributeNames": self.names,
                "ExpressionAttributeValues": self.values,
            }
        }


# Tries of a transaction another one on the same study got in the way of (a burst of one
# study's files), and the backoff between them (seconds).
TRANSACTION_ATTEMPTS = 10
TRANSACTION_BACKOFF = 0.05
TRANSACTION_BACKOFF_CAP = 2.0
# Items one TransactWriteItems call may hold (DynamoDB's limit).
MAX_TRANSACTION_ITEMS = 100

# A record write: the item, the stored item it replaces (``None``: there was none), and the
# sequencer of the event it comes from (``None``: a bulk run).
Write = tuple[dict[str, Any], dict[str, Any] | None, str | None]


class Aggregates:
    """Writes instance records together with their studies' and series' counters, and settles them.

    Built once beside the ``DynamoDBManager`` whose client and table it uses.
    """

    def __init__(self, dynamodb: DynamoDBManager) -> None:
        self.dynamodb = dynamodb
        self.client = dynamodb.client
        self.table = dynamodb.table_name

    def write(self, item: dict[str, Any], expected: dict[str, Any] | None, sequencer: str | None) -> bool:
        """Replace one record as ``DynamoDBManager.write_item`` does, moving the counters with it.

        Returns ``False`` when the stored record is no longer ``expected`` (nothing written).
        """
        changes = Changes()
        if not changes.add(expected, item):
            written = self.dynamodb.write_item(item, expected, sequencer)
        else:
            put = self.dynamodb.conditional_put(item, expected, sequencer)
            written = self._transact([put, *changes.actions(self.table)]) is None
        if written:
            self.settle(changes, [item, expected])
        return written

    def write_many(self, pairs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[str]:
        """Write records read in bulk (``(item, expected)``); return the paths that lost a race.

        Records whose counters do not move go in BatchWriteItems; the others in transactions
        of up to ``MAX_TRANSACTION_ITEMS`` items, each record conditional on what was read. A
        transaction one record of which lost a race is sent again without it; the caller
        decides those records again, one by one.
        """
        moves = [Changes().add(expected, item) for item, expected in pairs]
        lost = self.dynamodb.write_items([item for (item, _), move in zip(pairs, moves, strict=True) if not move])
        moving: list[Write] = [
            (item, expected, None) for (item, expected), move in zip(pairs, moves, strict=True) if move
        ]
        for group in _transaction_groups(moving):
            lost += self._write_group(group)
        return lost

    def write_events(self, writes: list[Write]) -> list[str]:
        """Write the records of several events at once, one per key; return the paths that lost a race.

        As ``write_many``, but every write is conditional, on its event's sequencer too (an
        event is never written over a newer one): records whose counters move go in shared
        transactions, each study's search keys settled once; the others are written one by one.
        """
        lost: list[str] = []
        moving: list[Write] = []
        for item, expected, sequencer in writes:
            if Changes().add(expected, item):
                moving.append((item, expected, sequencer))
            elif not self.write(item, expected, sequencer):
                lost.append(item[PARTITION_KEY]["S"])
        for group in _transaction_groups(moving):
            lost += self._write_group(group)
        return lost

    def _write_group(self, group: list[Write]) -> list[str]:
        lost: list[str] = []
        while group:
            changes = Changes()
            for item, expected, _ in group:
                changes.add(expected, item)
            puts = [self.dynamodb.conditional_put(item, expected, sequencer) for item, expected, sequencer in group]
            failed = self._transact([*puts, *changes.actions(self.table)])
            if failed is None:
                self.settle(changes, [record for item, expected, _ in group for record in (item, expected)])
                return lost
            losers = {index for index in failed if index < len(group)}
            lost += [group[index][0][PARTITION_KEY]["S"] for index in sorted(losers)]
            group = [write for index, write in enumerate(group) if index not in losers]
            if not losers:
                raise UpstreamUnavailable("DynamoDB refused a study's counters; try again shortly")
        return lost

    def _transact(self, actions: list[dict[str, Any]]) -> list[int] | None:
        """Run one transaction; return ``None`` when written, else the indexes of failed conditions."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                with upstream("DynamoDB"):
                    self.client.transact_write_items(TransactItems=actions)
                return None
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]
                failed = [index for index, code in enumerate(reasons) if code == "ConditionalCheckFailed"]
                if failed:
                    return failed
            time.sleep(random.uniform(0, min(TRANSACTION_BACKOFF_CAP, TRANSACTION_BACKOFF * 2**attempt)))
        raise UpstreamUnavailable("a study's records kept changing while they were written")

    def settle(self, changes: Changes, items: Iterable[dict[str, Any] | None]) -> None:
        """After a write: remove emptied series and studies, write the studies' search keys.

        The studies of ``items`` are settled even when nothing moved, so a retried event
        finishes what a failed one left (a transaction written, its search keys not yet).
        """
        studies = set(changes.studies)
        studies |= {member.study for member in map(membership, items) if member is not None}
        for uid, change in changes.series.items():
            if change.instances < 0:
                self._delete_if_empty(series_key(uid), SERIES_INSTANCES)
        self.settle_studies(sorted(studies))

    def settle_studies(self, uids: list[str]) -> None:
        """``settle_study`` for several studies, their reads and search keys together.

        A bulk write's chunk holds many studies (a study per file, in an archive of
        radiographs): their items are read in one BatchGetItem and the search keys of those
        that changed written in shared BatchWriteItems, where each study cost a GetItem and
        two BatchWriteItems in turn. Each study's mark (the keys it lists, its print) is still
        its own conditional UpdateItem, after its keys are written; an emptied study is
        settled on its own, as before.
        """
        if len(uids) < 2:
            for uid in uids:
                self.settle_study(uid)
            return
        stored = self.dynamodb.get_items([study_key(uid) for uid in uids])
        present: list[tuple[str, dict[str, Any]]] = []
        for uid in uids:
            item = stored.get(study_key(uid))
            if item is not None and _emptied(item):
                self.settle_study(uid)
            elif item is not None:
                present.append((uid, item))
        self._write_keys(present)

    def settle_study(self, uid: str, attempts: int = 2) -> None:
        """Write the search keys of a study's current values, or remove the study once empty."""
        item = self.dynamodb.get_item(study_key(uid))
        if item is None:
            return
        if _emptied(item):
            if self._delete_if_empty(study_key(uid), STUDY_INSTANCES):
                self.dynamodb.delete_items(sorted(item.get(TOKEN_KEYS, {}).get("SS", [])))
                # Re-created meanwhile? Its writer's keys may just have been deleted: write them again.
                if attempts > 1 and self.dynamodb.get_item(study_key(uid)) is not None:
                    self._forget_print(uid)
                    self.settle_study(uid, attempts - 1)
            return
        self._write_keys([(uid, item)])

    def _write_keys(self, studies: list[tuple[str, dict[str, Any]]]) -> None:
        """Write the search keys of the studies (uid, item) whose print differs, then mark each."""
        marks = []
        for uid, item in studies:
            tokens = token_items(item)
            digest = token_print(tokens)
            if item.get(TOKEN_PRINT, {}).get("S") != digest:
                marks.append((uid, tokens, digest))
        if self.dynamodb.write_items([token for _, tokens, _ in marks for token in tokens]):
            raise UpstreamUnavailable("DynamoDB left a study's search keys unwritten; try again shortly")
        for uid, tokens, digest in marks:
            self._mark(uid, tokens, digest)

    def _mark(self, uid: str, tokens: list[dict[str, Any]], digest: str) -> None:
        """List the written search keys on the study and set its print (they are written)."""
        try:
            with upstream("DynamoDB"):
                self.client.update_item(
                    TableName=self.table,
                    Key={PARTITION_KEY: {"S": study_key(uid)}},
                    UpdateExpression="ADD #keys :keys SET #print = :print",
                    ConditionExpression="attribute_exists(#key)",
                    ExpressionAttributeNames={"#keys": TOKEN_KEYS, "#print": TOKEN_PRINT, "#key": PARTITION_KEY},
                    ExpressionAttributeValues={
                        ":keys": {"SS": [token[PARTITION_KEY]["S"] for token in tokens]},
                        ":print": {"S": digest},
                    },
                )
        except ClientError as exc:
            # Emptied and deleted meanwhile: its remover deletes the keys it finds listed.
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _forget_print(self, uid: str) -> None:
        try:
            with upstream("DynamoDB"):
                self.client.update_item(
                    TableName=self.table,
                    Key={PARTITION_KEY: {"S": study_key(uid)}},
                    UpdateExpression="REMOVE #print",
                    ConditionExpression="attribute_exists(#key)",
                    ExpressionAttributeNames={"#print": TOKEN_PRINT, "#key": PARTITION_KEY},
                )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _delete_if_empty(self, key: str, counter: str) -> bool:
        """Delete an aggregate item whose counter is zero; tell whether it was deleted."""
        try:
            with upstream("DynamoDB"):
                self.client.delete_item(
                    TableName=self.table,
                    Key={PARTITION_KEY: {"S": key}},
                    ConditionExpression="#n <= :zero",
                    ExpressionAttributeNames={"#n": counter},
                    ExpressionAttributeValues={":zero": {"N": "0"}},
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _emptied(study: dict[str, Any]) -> bool:
    """Whether a study item counts no instance any more (to be removed, not settled)."""
    return int(study.get(STUDY_INSTANCES, {}).get("N", "0")) <= 0


def _transaction_groups(writes: list[Write]) -> Iterable[list[Write]]:
    """Split record writes into groups whose puts and counter updates fit one transaction."""
    group: list[Write] = []
    touched: set[str] = set()
    for write in writes:
        keys = set()
        for member in (membership(write[1]), membership(write[0])):
            if member is not None:
                keys |= {study_key(member.study), series_key(member.series)}
        if group and len(group) + 1 + len(touched | keys) > MAX_TRANSACTION_ITEMS:
            yield group
            group, touched = [], set()
        group.append(write)
        touched |= keys
    if group:
        yield group
