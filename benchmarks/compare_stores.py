"""Compare the tables of two stores: row counts, keys and content, table by table.

For a change that must leave what the pipeline writes as it was (a refactoring): build a store
at the commit before it and one at the commit after, from the same corpora, and compare them.
Parquet tables are compared per partition at their latest version by rows, the digest of their
sorted keys and the content hash their footer carries (written over store-relative locations,
so two stores in different places compare equal); Lance tables by rows, sorted keys and a digest
of their rows in key order, and separately of their rows without the vectors, so a float-level
difference in an encoder's output is told apart from a changed row. Prints one line per table
and a summary; where a Parquet partition differs, the columns that differ. `--ignore seconds`
compares such partitions again without the named fields (as columns, and as keys inside JSON text
columns such as a learning curve), for fields that measure wall time. Writes the figures to
benchmarks/results/compare_stores.json. Run:
    .venv/bin/python benchmarks/compare_stores.py STORE_A STORE_B [--only PREFIX ...] [--ignore FIELD ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "compare_stores.json"


def _digest(values) -> str:
    return hashlib.sha256("\n".join(map(str, values)).encode()).hexdigest()[:16]


def parquet_facts(store, name: str, schema) -> dict[str, Any]:
    table = store.parquet(name)
    facts = {}
    for part in table.partitions() if schema.partition_by else [None]:
        latest = table.latest(part)
        if latest is None:
            continue
        frame = table.read(partition=part)
        keys = sorted("|".join(map(str, k)) for k in frame.select(list(schema.key)).iter_rows())
        facts[part or ""] = {"rows": latest.rows, "keys": _digest(keys),
                             "content_hash": latest.metadata.get("content_hash", "")}
    return facts


def lance_facts(store, name: str) -> dict[str, Any]:
    from storage.parquet import table_digest

    table = store.lance(name)
    if not table.exists():
        return {}
    data = table.read_arrow().sort_by("key")
    plain = data.drop_columns([c for c in data.column_names if c == "vector"])
    return {"": {"rows": data.num_rows, "keys": _digest(data.column("key").to_pylist()),
                 "content_hash": table_digest(data), "without_vectors": table_digest(plain)}}


def snapshot(root: str, only: list[str]) -> dict[str, dict[str, Any]]:
    from storage import Store
    from storage.schemas import all_schemas

    store = Store(root)
    out = {}
    for name, schema in sorted(all_schemas().items()):
        if only and not any(name.startswith(p) for p in only):
            continue
        out[name] = lance_facts(store, name) if schema.format == "lance" else parquet_facts(store, name, schema)
    return {name: facts for name, facts in out.items() if facts}


def compare(a: dict, b: dict) -> dict[str, str]:
    """Table -> `same`, or what differs."""
    verdicts = {}
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            verdicts[name] = f"only in {'A' if name in a else 'B'}"
            continue
        diffs = []
        for part in sorted(set(a[name]) | set(b[name])):
            fa, fb = a[name].get(part), b[name].get(part)
            if fa != fb:
                fields = [k for k in (fa or fb) if (fa or {}).get(k) != (fb or {}).get(k)]
                diffs.append(f"[{part}] " + ", ".join(fields) if part else ", ".join(fields))
        verdicts[name] = "same" if not diffs else "differs: " + "; ".join(diffs)
    return verdicts


def _without(value, ignore: set[str]):
    """`value` with the `ignore` keys removed at any depth (JSON text parsed and written back)."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.dumps(_without(json.loads(value), ignore), sort_keys=True)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _without(v, ignore) for k, v in value.items() if k not in ignore}
    if isinstance(value, list):
        return [_without(v, ignore) for v in value]
    return value


def differing_columns(root_a: str, root_b: str, name: str, part: str, ignore: set[str]) -> tuple[list[str], bool]:
    """The columns in which one Parquet partition of two stores differs, and whether the two are
    equal once the `ignore` fields are left out."""
    from storage import Store

    frames = [Store(root).parquet(name).read(partition=part or None) for root in (root_a, root_b)]
    columns = [c for c in frames[0].columns if frames[0][c].to_list() != frames[1][c].to_list()]
    rest = [[[_without(v, ignore) for v in f[c].to_list()] for c in f.columns if c not in ignore] for f in frames]
    return columns, rest[0] == rest[1]


def explain(verdicts: dict[str, str], a: dict, b: dict, root_a: str, root_b: str, ignore: set[str]) -> dict[str, str]:
    """Differing Parquet tables: which columns, and whether they are equal without `ignore`."""
    out = {}
    for name, verdict in verdicts.items():
        if verdict == "same" or name not in a or name not in b or "without_vectors" in next(iter(a[name].values())):
            continue
        parts = [p for p in a[name] if a[name][p] != b[name].get(p)]
        found = [differing_columns(root_a, root_b, name, p, ignore) for p in parts]
        columns = sorted({c for cols, _ in found for c in cols})
        out[name] = (f"{len(parts)} partitions differ in columns {', '.join(columns)}; "
                     + ("equal without " + ", ".join(sorted(ignore)) if ignore and all(e for _, e in found)
                        else "different beyond that"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store_a")
    parser.add_argument("store_b")
    parser.add_argument("--only", nargs="*", default=[], help="table-name prefixes to compare")
    parser.add_argument("--ignore", nargs="*", default=[], help="fields that measure wall time (e.g. seconds)")
    args = parser.parse_args()
    a, b = snapshot(args.store_a, args.only), snapshot(args.store_b, args.only)
    verdicts = compare(a, b)
    explained = explain(verdicts, a, b, args.store_a, args.store_b, set(args.ignore))
    for name, verdict in verdicts.items():
        rows = sum(p["rows"] for p in a.get(name, {}).values())
        print(f"{name:<48} {rows:>7} rows  {explained.get(name, verdict)}")
    same = sum(v == "same" for v in verdicts.values())
    print(f"\n{same} of {len(verdicts)} tables the same "
          f"({sum(p['rows'] for t in a.values() for p in t.values())} rows in A, "
          f"{sum(p['rows'] for t in b.values() for p in t.values())} in B)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"a": args.store_a, "b": args.store_b, "verdicts": verdicts, "explained": explained,
                                   "tables_a": a, "tables_b": b}, indent=1, sort_keys=True))
    beyond = [n for n, v in verdicts.items() if v != "same" and "equal without" not in explained.get(n, "")]
    print(f"tables different beyond the ignored fields: {', '.join(beyond) or 'none'}")
    return 0 if not beyond else 1


if __name__ == "__main__":
    raise SystemExit(main())
