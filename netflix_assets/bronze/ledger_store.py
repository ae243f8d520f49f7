"""The ledger (`<lake>/bronze/_ingested_files`) read and written outside Spark, with delta-rs.

The landing-zone sensor runs in the Dagster daemon, where a JVM per tick is out of the
question: it reads the ledger's paths from here, and records a file `failed` here when
its runs kept failing (bronze never got to record it). Operators use the same functions
from the command line:

    python -m netflix_assets.bronze.ledger_store show [--date YYYY-MM-DD] [--status CODE]
    python -m netflix_assets.bronze.ledger_store requeue PATH [PATH...]

(`make ledger DATE=...`, `make requeue FILES="..."`). The lake is the deployment's
(`NETFLIX_DEPLOYMENT`, `NETFLIX_LAKE_URI`), or `--lake`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from ..partitions import PARTITION_COLUMN
from ..resources.landing import escape_undecodable
from .ledger import FAILED, LEDGER_SCHEMA, LEDGER_TABLE, refusal, status_code

# LEDGER_SCHEMA's Spark types as Arrow types: a row appended by delta-rs must have the
# table's exact types (Spark's `timestamp` is Delta's UTC timestamp, microseconds).
_ARROW_TYPES = {"string": "string", "long": "int64", "timestamp": "timestamp", "date": "date32"}


def arrow_schema():
    """The ledger's schema as a pyarrow schema, derived from LEDGER_SCHEMA (one definition)."""
    import pyarrow as pa

    fields = []
    for column in LEDGER_SCHEMA.split(","):
        name, kind = column.split()
        arrow_type = pa.timestamp("us", "UTC") if kind == "timestamp" else getattr(pa, _ARROW_TYPES[kind])()
        fields.append((name, arrow_type))
    return pa.schema(fields)


def ledger_path(uri: str) -> str:
    """The form a path takes in the ledger: itself when it is valid UTF-8 (every name the
    listing escapes is), else its undecodable bytes as `\\xNN`. Parquet strings must be UTF-8,
    and a name Python listed from a non-UTF-8 file system holds lone surrogates; the sensor
    compares listed names with ledger paths through this, so such a file is not re-found
    as new forever once recorded."""
    return escape_undecodable(uri)


@dataclass(frozen=True)
class FailedFile:
    """A file whose runs kept failing: recorded `failed: <last error>` by the sensor."""

    path: str
    size: int
    modified_at: Optional[dt.datetime]
    ingest_date: dt.date
    run_id: Optional[str]
    error: str
    etag: Optional[str] = None


def _table(uri: str, storage_options: Optional[dict[str, Any]]):
    """The ledger as a DeltaTable, or None while bronze (or this module) has not created it."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(uri, storage_options=storage_options or None)
    except TableNotFoundError:
        return None


def read_ledger(
    uri: str,
    storage_options: Optional[dict[str, Any]] = None,
    day: Optional[dt.date] = None,
    status: Optional[str] = None,
) -> list[dict]:
    """Ledger rows (dicts, sorted by path), of partition `day` and status code `status` when
    given; [] when there is no ledger yet. A day reads only its partition's files."""
    table = _table(uri, storage_options)
    if table is None:
        return []
    filters = [(PARTITION_COLUMN, "=", day)] if day is not None else None
    rows = table.to_pyarrow_table(filters=filters).to_pylist()
    if status is not None:
        rows = [r for r in rows if status_code(r["status"]) == status]
    return sorted(rows, key=lambda r: r["path"])


def claimed_paths(uri: str, storage_options: Optional[dict[str, Any]] = None) -> set[str]:
    """Every path in the ledger, whatever its status: one column read, the sensor's per-tick cost."""
    table = _table(uri, storage_options)
    if table is None:
        return set()
    return set(table.to_pyarrow_table(columns=["path"]).column("path").to_pylist())


def failed_rows(failures: Sequence[FailedFile], now: dt.datetime):
    """The ledger rows (an Arrow table) recording `failures`."""
    import pyarrow as pa

    columns: dict[str, list] = {name: [] for name in arrow_schema().names}
    for f in failures:
        values = {
            "path": ledger_path(f.path),
            "size": int(f.size),
            "modified_at": f.modified_at,
            "etag": f.etag,
            "sha256": None,
            "discovered_at": now,
            "ingest_date": f.ingest_date,
            "run_id": f.run_id,
            "status": refusal(FAILED, ledger_path(f.error)),
            "duplicate_of": None,
        }
        for name, value in values.items():
            columns[name].append(value)
    return pa.table(columns, schema=arrow_schema())


def record_failed(
    uri: str,
    failures: Sequence[FailedFile],
    storage_options: Optional[dict[str, Any]] = None,
    now: Optional[dt.datetime] = None,
) -> list[str]:
    """Append a `failed` row per file not in the ledger yet (creating the table, partitioned by
    `ingest_date`, if bronze never has); returns the paths written. Idempotent: the sensor
    writes again on its next tick when a write failed, and a path is in the ledger at most once.
    From then on the sensor sees the file as claimed, and bronze does not read it (NOT_READ)."""
    from deltalake import write_deltalake

    present = claimed_paths(uri, storage_options)
    todo: dict[str, FailedFile] = {}
    for f in failures:
        if ledger_path(f.path) not in present:
            todo.setdefault(ledger_path(f.path), f)
    if not todo:
        return []
    table = failed_rows(list(todo.values()), now or dt.datetime.now(dt.timezone.utc))
    write_deltalake(
        uri, table, mode="append", partition_by=[PARTITION_COLUMN], storage_options=storage_options or None
    )
    return sorted(todo)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def requeue(uri: str, paths: Iterable[str], storage_options: Optional[dict[str, Any]] = None) -> list[str]:
    """Delete the `failed` rows of `paths`: the sensor then finds those files new again and
    requests them (under a new run key, with fresh attempts). Rows of any other status are
    left alone (an ingested file is never read twice). Returns the paths re-queued."""
    wanted = {ledger_path(p) for p in paths}
    failed = [r["path"] for r in read_ledger(uri, storage_options, status=FAILED) if r["path"] in wanted]
    if not failed:
        return []
    table = _table(uri, storage_options)
    literals = ", ".join(_sql_string(p) for p in failed)
    failed_status = f"(status = {_sql_string(FAILED)} OR status LIKE {_sql_string(FAILED + ':%')})"
    table.delete(f"path IN ({literals}) AND {failed_status}")
    return sorted(failed)


def format_day(rows: Sequence[dict], day: dt.date) -> str:
    """A day's ledger for people: counts by status code, then one `path  status` line per file,
    grouped by status code."""
    by_code: dict[str, list[dict]] = {}
    for row in rows:
        by_code.setdefault(status_code(row["status"]) or "?", []).append(row)
    lines = [f"ledger {day.isoformat()}: {len(rows)} file(s)"]
    width = max((len(code) for code in by_code), default=0)
    lines += [f"  {code:<{width}}  {len(by_code[code])}" for code in sorted(by_code)]
    for code in sorted(by_code):
        lines += [f"{r['path']}  {r['status']}" for r in sorted(by_code[code], key=lambda r: r["path"])]
    return "\n".join(lines)


def _ledger_location(lake_root: Optional[str]) -> tuple[str, dict[str, Any]]:
    """(ledger uri, storage options) of `--lake`, else of the deployment's lake resource,
    as the code location builds it (its EnvVar secrets resolved)."""
    from ..resources.lake import LakeResource

    if lake_root:
        lake = LakeResource(root=lake_root)
    else:
        from ..deployments import resources_for

        lake = resources_for()["lake"].process_config_and_initialize()
    return lake.table_uri("bronze", LEDGER_TABLE), lake.storage_options()


def _as_ledger_path(given: str) -> str:
    # A plain local path names the same file as its file:// URI (the ledger's form).
    return given if "://" in given else f"file://{os.path.abspath(given)}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netflix_assets.bronze.ledger_store", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", help="lake root (default: NETFLIX_LAKE_URI / the deployment's lake)")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="a day's files grouped by status")
    show.add_argument("--date", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default: today, UTC)")
    show.add_argument("--status", help="only this status code (e.g. failed)")
    again = commands.add_parser("requeue", help="give files recorded `failed` back to the sensor")
    again.add_argument("paths", nargs="+", metavar="PATH")
    args = parser.parse_args(argv)

    uri, options = _ledger_location(args.lake)
    if args.command == "show":
        day = args.date or dt.datetime.now(dt.timezone.utc).date()
        print(format_day(read_ledger(uri, options, day=day, status=args.status), day))
        return 0
    paths = [_as_ledger_path(p) for p in args.paths]
    done = requeue(uri, paths, options)
    for path in done:
        print(f"re-queued {path}")
    for path in sorted({ledger_path(p) for p in paths} - set(done)):
        print(f"not re-queued (no `failed` row): {path}", file=sys.stderr)
    return 0 if len(done) == len({ledger_path(p) for p in paths}) else 1


if __name__ == "__main__":
    sys.exit(main())
