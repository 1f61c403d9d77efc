"""The JSON documents the deploy scripts write and read: IAM policies, the bucket's
notification configuration, the function's resource policy.

Each subcommand reads and writes files and prints one word (or line) the shell acts on. The
JSON work lives here because bash cannot do it safely and ``jq`` is not a prerequisite.
Standard library only, so any ``python3`` runs it.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path
from typing import Any

Document = dict[str, Any]
NOTIFICATION_LISTS = ("LambdaFunctionConfigurations", "QueueConfigurations", "TopicConfigurations")


def read_json(path: Path) -> Document:
    """Read a JSON object; an empty file (what the CLI prints for "nothing set") is ``{}``."""
    text = path.read_text().strip()
    return json.loads(text) if text else {}


def canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def render(template: Path, values: dict[str, str]) -> str:
    """Fill the ``${Name}`` placeholders of a policy template; every one must be given."""
    empty = sorted(name for name, value in values.items() if value in ("", "None", "null"))
    if empty:
        raise SystemExit(f"{template.name}: no value for {', '.join(empty)}")
    try:
        text = string.Template(template.read_text()).substitute(values)
    except KeyError as exc:
        raise SystemExit(f"{template.name}: no value for ${{{exc.args[0]}}}") from exc
    # Compact but in the template's order, so the policy reads the same in the IAM console.
    return json.dumps(json.loads(text), separators=(",", ":"))


def lambda_entry(entry_id: str, function_arn: str, events: list[str], prefix: str, suffix: str = "") -> Document:
    """Return our ``LambdaFunctionConfigurations`` entry; the fixed Id makes re-runs no-ops.

    An empty ``suffix`` is left out: the indexer wants every key under its prefix.
    """
    rules = [{"Name": "prefix", "Value": prefix}] + ([{"Name": "suffix", "Value": suffix}] if suffix else [])
    return {
        "Id": entry_id,
        "LambdaFunctionArn": function_arn,
        "Events": list(events),
        "Filter": {"Key": {"FilterRules": rules}},
    }


def filter_rules(entry: Document) -> dict[str, str]:
    """Return ``{"prefix": …, "suffix": …}``; S3 answers ``Prefix``/``Suffix``, we send lower case."""
    rules = entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    return {rule["Name"].lower(): rule["Value"] for rule in rules}


def same_entry(a: Document, b: Document) -> bool:
    def normal(entry: Document) -> tuple[Any, ...]:
        return (entry.get("Id"), entry.get("LambdaFunctionArn"), sorted(entry.get("Events", [])), filter_rules(entry))

    return normal(a) == normal(b)


def events_overlap(a: list[str], b: list[str]) -> bool:
    """Tell whether two event lists share a type (``s3:ObjectCreated:*`` covers ``…:Put``)."""

    def covers(x: str, y: str) -> bool:
        return x == y or (x.endswith("*") and y.startswith(x[:-1]))

    return any(covers(x, y) or covers(y, x) for x in a for y in b)


def entries_overlap(a: Document, b: Document) -> bool:
    """S3's rule: same event type and overlapping prefixes and suffixes is "ambiguously defined"."""
    ra, rb = filter_rules(a), filter_rules(b)
    pa, pb = ra.get("prefix", ""), rb.get("prefix", "")
    sa, sb = ra.get("suffix", ""), rb.get("suffix", "")
    return (
        events_overlap(a.get("Events", []), b.get("Events", []))
        and (pa.startswith(pb) or pb.startswith(pa))
        and (sa.endswith(sb) or sb.endswith(sa))
    )


def merge_notification(current: Document, ours: Document) -> tuple[Document, str, list[str]]:
    """Put ``ours`` into ``current``, keeping every other entry as it is.

    Returns the new configuration, ``added``/``updated``/``unchanged``, and a warning for
    each other entry S3 will refuse to combine with ours (moto accepts them; S3 does not).
    """
    merged = json.loads(json.dumps(current))
    entries: list[Document] = merged.setdefault("LambdaFunctionConfigurations", [])
    index = next((i for i, entry in enumerate(entries) if entry.get("Id") == ours["Id"]), None)
    if index is None:
        entries.append(ours)
        status = "added"
    elif same_entry(entries[index], ours):
        status = "unchanged"
    else:
        entries[index] = ours
        status = "updated"
    warnings = [
        f"entry {entry.get('Id')!r} ({kind}) overlaps ours (same events, overlapping prefix and suffix): "
        "real S3 refuses the pair as 'ambiguously defined' (moto accepts it)"
        for kind in NOTIFICATION_LISTS
        for entry in merged.get(kind, [])
        if entry.get("Id") != ours["Id"] and entries_overlap(entry, ours)
    ]
    return merged, status, warnings


def remove_notification(current: Document, entry_id: str) -> tuple[Document, str]:
    """Drop the Lambda entry ``entry_id``, keeping every other entry; return ``removed``/``absent``."""
    entries = current.get("LambdaFunctionConfigurations", [])
    kept = [entry for entry in entries if entry.get("Id") != entry_id]
    if len(kept) == len(entries):
        return current, "absent"
    remaining = {key: value for key, value in current.items() if key != "LambdaFunctionConfigurations"}
    if kept:
        remaining["LambdaFunctionConfigurations"] = kept
    return remaining, "removed"


def describe_notification(current: Document, entry_id: str) -> str:
    """One line: our entry's events and filter, and how many other entries the bucket keeps."""
    ours = [e for e in current.get("LambdaFunctionConfigurations", []) if e.get("Id") == entry_id]
    others = sum(len(current.get(kind, [])) for kind in NOTIFICATION_LISTS) - len(ours)
    kept = f"{others} other {'entry' if others == 1 else 'entries'} kept"
    if not ours:
        return f"no entry {entry_id!r}; {kept}"
    rules = filter_rules(ours[0])
    return (
        f"{entry_id}: {','.join(ours[0]['Events'])} on {rules.get('prefix', '')}*{rules.get('suffix', '')}"
        f" -> {ours[0]['LambdaFunctionArn']}; {kept}"
    )


def permission_state(policy: Document, sid: str, source_arn: str, source_account: str) -> str:
    """Compare statement ``sid`` of a function's resource policy with ours: absent/same/different.

    Only what the statement grants is compared (who, what, from which bucket and account),
    not how the service happens to lay the JSON out.
    """
    statements = json.loads(policy["Policy"])["Statement"] if policy.get("Policy") else []
    found = [s for s in statements if s.get("Sid") == sid]
    if not found:
        return "absent"
    wanted = ("Allow", "lambda:InvokeFunction", "s3.amazonaws.com", source_arn, source_account)
    return "same" if len(found) == 1 and grant_of(found[0]) == wanted else "different"


def grant_of(statement: Document) -> tuple[Any, ...]:
    """Return effect, action, service principal, source ARN and source account of a statement."""
    conditions = statement.get("Condition", {})
    values = {key.lower(): value for operator in conditions.values() for key, value in operator.items()}
    principal = statement.get("Principal", {})
    return (
        statement.get("Effect"),
        statement.get("Action"),
        principal.get("Service") if isinstance(principal, dict) else principal,
        values.get("aws:sourcearn"),
        values.get("aws:sourceaccount"),
    )


def field(document: Any, path: str) -> str:
    """Return the value at a dotted ``path`` (``Role.Arn``): text as is, anything else as JSON."""
    for key in path.split("."):
        document = document.get(key) if isinstance(document, dict) else None
    return document if isinstance(document, str) else canonical(document)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("field", help="print one value of a JSON file: field FILE Role.Arn")
    f.add_argument("file", type=Path)
    f.add_argument("path")
    r = sub.add_parser("render", help="fill a policy template: render TEMPLATE Name=value…")
    r.add_argument("template", type=Path)
    r.add_argument("values", nargs="*")
    s = sub.add_parser("same", help="exit 0 when two JSON files hold the same document")
    s.add_argument("a", type=Path)
    s.add_argument("b", type=Path)
    for name in ("merge-notification", "remove-notification", "describe-notification"):
        n = sub.add_parser(name)
        n.add_argument("--current", type=Path, required=True)
        n.add_argument("--id", required=True)
        if name != "describe-notification":
            n.add_argument("--out", type=Path, required=True)
        if name == "merge-notification":
            for option in ("--function-arn", "--prefix"):
                n.add_argument(option, required=True)
            n.add_argument("--event", action="append", required=True, help="repeat for each event type")
            n.add_argument("--suffix", default="")
    m = sub.add_parser("permission-state")
    m.add_argument("--policy", type=Path, required=True)
    for option in ("--sid", "--source-arn", "--source-account"):
        m.add_argument(option, required=True)
    return p


def main() -> None:
    args = parser().parse_args()
    if args.command == "field":
        print(field(read_json(args.file), args.path))
    elif args.command == "render":
        print(render(args.template, dict(value.split("=", 1) for value in args.values)))
    elif args.command == "same":
        sys.exit(0 if canonical(read_json(args.a)) == canonical(read_json(args.b)) else 1)
    elif args.command == "merge-notification":
        ours = lambda_entry(args.id, args.function_arn, args.event, args.prefix, args.suffix)
        merged, status, warnings = merge_notification(read_json(args.current), ours)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        args.out.write_text(json.dumps(merged, indent=2))
        print(status)
    elif args.command == "remove-notification":
        remaining, status = remove_notification(read_json(args.current), args.id)
        args.out.write_text(json.dumps(remaining, indent=2))
        print(status)
    elif args.command == "describe-notification":
        print(describe_notification(read_json(args.current), args.id))
    elif args.command == "permission-state":
        print(permission_state(read_json(args.policy), args.sid, args.source_arn, args.source_account))


if __name__ == "__main__":
    main()
