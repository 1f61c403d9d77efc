"""Studies and series as items of the metadata table, kept exact as instances come and go.

Beside one record per file, the table holds (``FilePath`` values no s3 path can take):

- ``#study/<StudyInstanceUID>``: the study's values (the first instance indexed that has a value
  gives it: a well-formed study's instances agree), ``NumberOfStudyRelatedInstances``, and one
  counter per series (``S#<SeriesInstanceUID>``) and per modality (``M#<Modality>``) of
  instances, so the numbers of series and the modalities in the study follow deletes.
- ``#series/<SeriesInstanceUID>``: the series' values and ``NumberOfSeriesRelatedInstances``,
  with ``SeriesStudy``/``SeriesSortKey`` for the ``SeriesStudy-SeriesSort`` index.
- ``#token/<StudyInstanceUID>/<StudySortKey>/<token>``: a study's search keys (``StudyToken`` =
  ``<token>#<shard>``, sorted on ``StudySortKey``): ``*`` for every study, ``mod:<modality>``,
  and ``pid:``, ``acc:``, ``pn:`` and ``desc:`` followed by every prefix of up to
  ``TOKEN_PREFIX`` characters of the PatientID, the AccessionNumber, each name component and
  each word of the description. A reader checks every study it finds through a token against
  the study item itself, so a token left behind by values that changed costs a read, never a
  wrong answer.

Counts are exact because an instance's record and the counters move in one
``TransactWriteItems``: the record's write is conditional on the record read before it, and the
counters move by the difference between what that record and the new one count for
(``membership``). A duplicate event counts nothing; an event that lost a race is cancelled
whole and decided again. Search keys are written after the transaction (``Aggregates.settle``),
from the study item as it then is.

Standard library and boto3 only: the indexer function's package carries this module.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from errors import UpstreamUnavailable
from managers import records
from managers.aws import error_code, upstream
from managers.table import (
    INSTANCE_SERIES,
    PARTITION_KEY,
    SERIES_SORT,
    SERIES_STUDY,
    SHARDS,
    STUDY_SORT,
    STUDY_TOKEN,
    dated,
    number_key,
    valid_uid,
)

if TYPE_CHECKING:
    from managers.DynamoDBManager import DynamoDBManager

STUDY_PREFIX = "#study/"
SERIES_PREFIX = "#series/"
TOKEN_PREFIX_KEY = "#token/"
STUDY_INSTANCES = "NumberOfStudyRelatedInstances"
SERIES_INSTANCES = "NumberOfSeriesRelatedInstances"
SERIES_COUNTER = "S#"
MODALITY_COUNTER = "M#"
TOKEN_PRINT = "TokenPrint"
TOKEN_KEYS = "TokenKeys"
# Characters of a word that search keys cover: a longer query text is looked up by its first
# TOKEN_PREFIX characters and the rest is checked on the study.
TOKEN_PREFIX = 8
# Words of a name and of a description that get search keys (the rest are still checked).
NAME_WORDS = 5
DESCRIPTION_WORDS = 8

# A modality code (CS: upper-case letters, digits, space, underscore; 16 at most).
MODALITY_PATTERN = re.compile(r"[A-Z0-9_ ]{1,16}")

# The study's values, by DICOM keyword; the first four come from the header's five fields.
STUDY_FIELDS = ("PatientID", "StudyDate", "InstitutionName", "StudyDescription")
STUDY_TEXTS = (
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)
SERIES_TEXTS = ("SeriesDescription", "BodyPartExamined", "SeriesDate")

WordKind = Literal["pn", "id", "text"]


def words(value: str, kind: WordKind) -> list[str]:
    """Return the words of a value: a PN's name components, a description's words, an id whole."""
    if kind == "id":
        return [value] if value else []
    separators = r"[\^=\s,]+" if kind == "pn" else r"[^0-9a-zA-Z\u00c0-\uffff]+"
    return [word for word in re.split(separators, value) if word]


def study_sort_key(study_date: str | None, study_uid: str) -> str:
    """Return a study's sort key: newest StudyDate first, then by UID; undated studies last."""
    day = dated(study_date)
    return f"{99999999 - int(day):08d}#{study_uid}" if day else f"~#{study_uid}"


def study_key(study_uid: str) -> str:
    return f"{STUDY_PREFIX}{study_uid}"


def series_key(series_uid: str) -> str:
    return f"{SERIES_PREFIX}{series_uid}"


def shard_of_study(study_uid: str) -> int:
    """Return the shard of a study's search keys (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(study_uid.encode(), digest_size=8).digest(), "big") % SHARDS


@dataclass(frozen=True)
class Membership:
    """What one instance record counts for: its study, its series, its modality, and their values."""

    study: str
    series: str
    modality: str | None
    study_values: dict[str, str] = field(hash=False, compare=False)
    series_values: dict[str, dict[str, str]] = field(hash=False, compare=False)


def membership(item: dict[str, Any] | None) -> Membership | None:
    """Return what a stored item counts for (``None``: nothing, as a tombstone or an upload only)."""
    if not item or records.is_tombstone(item) or INSTANCE_SERIES not in item:
        return None
    study = item.get("StudyInstanceUID", {}).get("S")
    series = item[INSTANCE_SERIES]["S"]
    if not valid_uid(study):
        return None
    header = records.fields_of_map(item.get(records.HEADER_FIELDS, {}))
    modality = (header.get("Modality") or "").upper()
    study_values = {name: header[name] or "" for name in STUDY_FIELDS}
    study_values.update({name: item.get(name, {}).get("S", "") for name in STUDY_TEXTS})
    series_values = {name: {"S": item[name]["S"]} for name in SERIES_TEXTS if "S" in item.get(name, {})}
    if "N" in item.get("SeriesNumber", {}):
        series_values["SeriesNumber"] = {"N": item["SeriesNumber"]["N"]}
    series_values[SERIES_SORT] = {"S": number_key(_number(item.get("SeriesNumber")), series)}
    if MODALITY_PATTERN.fullmatch(modality):
        series_values["Modality"] = {"S": modality}
    return Membership(
        study=str(study),
        series=series,
        modality=modality if MODALITY_PATTERN.fullmatch(modality) else None,
        study_values={name: value for name, value in study_values.items() if value},
        series_values=series_values,
    )


def _number(value: dict[str, str] | None) -> int | None:
    try:
        return int((value or {}).get("N", ""))
    except ValueError:
        return None


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


def counters(item: dict[str, Any], prefix: str) -> dict[str, int]:
    """Return the positive counters of a study item under ``prefix`` (series or modalities)."""
    found = {}
    for name, value in item.items():
        if name.startswith(prefix) and "N" in value and int(value["N"]) > 0:
            found[name[len(prefix) :]] = int(value["N"])
    return found


def _prefixes(word: str) -> list[str]:
    return [word[:length] for length in range(1, min(len(word), TOKEN_PREFIX) + 1)]


def study_tokens(item: dict[str, Any]) -> list[str]:
    """Return the search keys of a study item (see the module's docstring)."""
    text = {name: item.get(name, {}).get("S", "").lower() for name in ("PatientID", "AccessionNumber")}
    tokens = {"*"} | {f"mod:{modality.lower()}" for modality in counters(item, MODALITY_COUNTER)}
    tokens |= {f"pid:{prefix}" for prefix in _prefixes(text["PatientID"])}
    tokens |= {f"acc:{prefix}" for prefix in _prefixes(text["AccessionNumber"])}
    for word in words(item.get("PatientName", {}).get("S", "").lower(), "pn")[:NAME_WORDS]:
        tokens |= {f"pn:{prefix}" for prefix in _prefixes(word)}
    for word in words(item.get("StudyDescription", {}).get("S", "").lower(), "text")[:DESCRIPTION_WORDS]:
        tokens |= {f"desc:{prefix}" for prefix in _prefixes(word)}
    return sorted(tokens)


def query_token(kind: str, text: str) -> str:
    """Return the search key a query text is looked up by (``kind``: pid, acc, pn, desc, mod)."""
    word_kind: WordKind = "pn" if kind == "pn" else "text" if kind == "desc" else "id"
    found = words(text.lower(), word_kind)
    if kind == "mod":
        return f"mod:{text.lower()}"
    return f"{kind}:{found[0][:TOKEN_PREFIX]}" if found else "*"


def token_items(item: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the token items of a study item, keyed by its current sort key."""
    uid = item["StudyInstanceUID"]["S"]
    sort = study_sort_key(item.get("StudyDate", {}).get("S"), uid)
    shard = shard_of_study(uid)
    return [
        {
            PARTITION_KEY: {"S": f"{TOKEN_PREFIX_KEY}{uid}/{sort}/{token}"},
            STUDY_TOKEN: {"S": f"{token}#{shard}"},
            STUDY_SORT: {"S": sort},
            "StudyInstanceUID": {"S": uid},
        }
        for token in study_tokens(item)
    ]


def token_print(tokens: Iterable[dict[str, Any]]) -> str:
    """Return a digest of a set of token items, to tell whether they were written already."""
    keys = sorted(token[PARTITION_KEY]["S"] for token in tokens)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]


# Tries of a transaction another one on the same study got in the way of (a burst of one
# study's files), and the backoff between them (seconds).
TRANSACTION_ATTEMPTS = 10
TRANSACTION_BACKOFF = 0.05
TRANSACTION_BACKOFF_CAP = 2.0
# Items one TransactWriteItems call may hold (DynamoDB's limit).
MAX_TRANSACTION_ITEMS = 100


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
        moving = [pair for pair, move in zip(pairs, moves, strict=True) if move]
        for group in _transaction_groups(moving):
            lost += self._write_group(group)
        return lost

    def _write_group(self, group: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[str]:
        lost: list[str] = []
        while group:
            changes = Changes()
            for item, expected in group:
                changes.add(expected, item)
            puts = [self.dynamodb.conditional_put(item, expected, None) for item, expected in group]
            failed = self._transact([*puts, *changes.actions(self.table)])
            if failed is None:
                self.settle(changes, [item for pair in group for item in pair])
                return lost
            losers = {index for index in failed if index < len(group)}
            lost += [group[index][0][PARTITION_KEY]["S"] for index in sorted(losers)]
            group = [pair for index, pair in enumerate(group) if index not in losers]
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
        for uid in sorted(studies):
            self.settle_study(uid)

    def settle_study(self, uid: str, attempts: int = 2) -> None:
        """Write the search keys of a study's current values, or remove the study once empty."""
        item = self.dynamodb.get_item(study_key(uid))
        if item is None:
            return
        if int(item.get(STUDY_INSTANCES, {}).get("N", "0")) <= 0:
            if self._delete_if_empty(study_key(uid), STUDY_INSTANCES):
                self.dynamodb.delete_items(sorted(item.get(TOKEN_KEYS, {}).get("SS", [])))
                # Re-created meanwhile? Its writer's keys may just have been deleted: write them again.
                if attempts > 1 and self.dynamodb.get_item(study_key(uid)) is not None:
                    self._forget_print(uid)
                    self.settle_study(uid, attempts - 1)
            return
        tokens = token_items(item)
        digest = token_print(tokens)
        if item.get(TOKEN_PRINT, {}).get("S") == digest:
            return
        if self.dynamodb.write_items(tokens):
            raise UpstreamUnavailable("DynamoDB left a study's search keys unwritten; try again shortly")
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


def _transaction_groups(
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None]],
) -> Iterable[list[tuple[dict[str, Any], dict[str, Any] | None]]]:
    """Split record writes into groups whose puts and counter updates fit one transaction."""
    group: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    touched: set[str] = set()
    for item, expected in pairs:
        keys = set()
        for member in (membership(expected), membership(item)):
            if member is not None:
                keys |= {study_key(member.study), series_key(member.series)}
        if group and len(group) + 1 + len(touched | keys) > MAX_TRANSACTION_ITEMS:
            yield group
            group, touched = [], set()
        group.append((item, expected))
        touched |= keys
    if group:
        yield group
