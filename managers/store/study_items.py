"""Studies, series and their search keys as items of the metadata table: keys, values, tokens.

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

Standard library only: the indexer function's package carries this module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from managers.dicom.attributes import SERIES_TEXTS, STUDY_FIELDS, STUDY_TEXTS
from managers.store import records
from managers.store.table import (
    INSTANCE_SERIES,
    PARTITION_KEY,
    SERIES_SORT,
    STUDY_SORT,
    STUDY_TOKEN,
    number_key,
    shard_of,
)
from metadata import modality_code, valid_date, valid_uid

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

WordKind = Literal["pn", "id", "text"]


def words(value: str, kind: WordKind) -> list[str]:
    """Return the words of a value: a PN's name components, a description's words, an id whole."""
    if kind == "id":
        return [value] if value else []
    separators = r"[\^=\s,]+" if kind == "pn" else r"[^0-9a-zA-Z\u00c0-\uffff]+"
    return [word for word in re.split(separators, value) if word]


def study_sort_key(study_date: str | None, study_uid: str) -> str:
    """Return a study's sort key: newest StudyDate first, then by UID; undated studies last."""
    day = valid_date(study_date)
    return f"{99999999 - int(day):08d}#{study_uid}" if day else f"~#{study_uid}"


def study_key(study_uid: str) -> str:
    return f"{STUDY_PREFIX}{study_uid}"


def series_key(series_uid: str) -> str:
    return f"{SERIES_PREFIX}{series_uid}"


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
    modality = modality_code(header.get("Modality"))
    study_values = {name: header[name] or "" for name in STUDY_FIELDS}
    study_values.update({name: item.get(name, {}).get("S", "") for name in STUDY_TEXTS})
    series_values = {name: {"S": item[name]["S"]} for name in SERIES_TEXTS if "S" in item.get(name, {})}
    if "N" in item.get("SeriesNumber", {}):
        series_values["SeriesNumber"] = {"N": item["SeriesNumber"]["N"]}
    series_values[SERIES_SORT] = {"S": number_key(_number(item.get("SeriesNumber")), series)}
    if modality:
        series_values["Modality"] = {"S": modality}
    return Membership(
        study=str(study),
        series=series,
        modality=modality,
        study_values={name: value for name, value in study_values.items() if value},
        series_values=series_values,
    )


def _number(value: dict[str, str] | None) -> int | None:
    try:
        return int((value or {}).get("N", ""))
    except ValueError:
        return None


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
    shard = shard_of(uid)
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
