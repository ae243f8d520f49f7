"""The ledger (`<lake>/bronze/_ingested_files`) read and written outside Spark, with delta-rs.

The landing-zone sensor runs in the Dagster daemon, where a JVM per tick is out of the
question: it reads the ledger's paths and open claims from here (one read per tick), and
records a file `failed` here when its runs kept failing. Operators use the same functions
from the command line:

    python -m netflix_assets.bronze.ledger_store show [--date YYYY-MM-DD] [--status CODE]
    python -m netflix_assets.bronze.ledger_store requeue PATH [PATH...]

(`make ledger DATE=...`, `make requeue FILES="..."`). The lake and the landing zone are the
deployment's (`NETFLIX_DEPLOYMENT`, `NETFLIX_LAKE_URI`, `NETFLIX_LANDING_URI`), or `--lake`
and `--landing`.

Paths: the table stores them relative to the landing zone's root (`ledger.to_ledger_path`;
absolute for files outside it, and in ledgers written before paths were relative). Every
function here takes that root (`LandingZoneResource.root_uri()`) and deals in absolute URIs,
the listing's form: what it returns is resolved under the root it is given, what it writes
is stored relative to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from ..lib import clock
from ..lib.delta import PARTITION_COLUMN, committed
from ..resources.landing import escape_undecodable
from .ledger import CLAIMED, FAILED, LEDGER_SCHEMA, LEDGER_TABLE, from_ledger_path, refusal, status_code, to_ledger_path

# What the sensor reads on each tick (not the whole row: a tick must stay cheap with 100k files).
SENSOR_COLUMNS = ["path", PARTITION_COLUMN, "run_id", "status"]

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


def stored_path(uri: str, root: str) -> str:
    """`uri` (absolute, as listed) as the ledger stores it under the landing root `root`."""
    return to_ledger_path(ledger_path(uri), root)


def _resolved(paths, root: str):
    """An Arrow column of stored paths, resolved to absolute URIs under `root` (vectorized:
    `ledger.from_ledger_path` for 100k rows without a Python loop)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    paths = paths.combine_chunks() if isinstance(paths, pa.ChunkedArray) else paths
    absolute = pc.or_(pc.match_substring(paths, "://"), pc.starts_with(paths, "/"))
    joined = pc.binary_join_element_wise(root.rstrip("/"), paths, "/")
    return pc.if_else(absolute, paths, joined)


@dataclass(frozen=True)
class OpenClaim:
    """A `claimed` row: a file a run took and has not given its final status yet."""

    path: str  # absolute URI
    ingest_date: dt.date
    run_id: Optional[str]


@dataclass(frozen=True)
class LedgerSnapshot:
    """What the sensor needs of the ledger on a tick."""

    paths: set[str]  # every path (absolute), whatever its status
    open_claims: list[OpenClaim]  # rows still `claimed`
    fragmented: bool = False  # time to compact (`compact_if_fragmented`), from the log this read loaded


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


def _rows(table, filters=None, columns: Optional[Sequence[str]] = None) -> list[dict]:
    return table.to_pyarrow_table(columns=list(columns) if columns else None, filters=filters).to_pylist()


def read_ledger(
    uri: str,
    root: str,
    storage_options: Optional[dict[str, Any]] = None,
    day: Optional[dt.date] = None,
    status: Optional[str] = None,
    columns: Optional[Sequence[str]] = None,
) -> list[dict]:
    """Ledger rows (dicts, sorted by path, `path` and `duplicate_of` resolved to absolute URIs
    under the landing root `root`), of partition `day` and status code `status` when given,
    with `columns` only when given (they must include `path`); [] when there is no ledger yet.
    A day reads only its partition's files."""
    table = _table(uri, storage_options)
    if table is None:
        return []
    if columns is not None and status is not None and "status" not in columns:
        columns = [*columns, "status"]
    rows = _rows(table, [(PARTITION_COLUMN, "=", day)] if day is not None else None, columns)
    if status is not None:
        rows = [r for r in rows if status_code(r["status"]) == status]
    for row in rows:
        row["path"] = from_ledger_path(row["path"], root)
        if row.get("duplicate_of") is not None:
            row["duplicate_of"] = from_ledger_path(row["duplicate_of"], root)
    return sorted(rows, key=lambda r: r["path"])


def claimed_paths(uri: str, root: str, storage_options: Optional[dict[str, Any]] = None) -> set[str]:
    """Every path in the ledger (absolute, under `root`), whatever its status: one column read."""
    table = _table(uri, storage_options)
    if table is None:
        return set()
    return set(_resolved(table.to_pyarrow_table(columns=["path"]).column("path"), root).to_pylist())


def read_for_sensor(uri: str, root: str, storage_options: Optional[dict[str, Any]] = None) -> LedgerSnapshot:
    """The sensor's one read per tick (SENSOR_COLUMNS): every path, and the rows still `claimed`
    (whose run may be gone: stranded claims), paths absolute under `root`."""
    import pyarrow.compute as pc

    table = _table(uri, storage_options)
    if table is None:
        return LedgerSnapshot(set(), [])
    rows = table.to_pyarrow_table(columns=SENSOR_COLUMNS)
    rows = rows.set_column(rows.schema.get_field_index("path"), "path", _resolved(rows.column("path"), root))
    open_rows = rows.filter(pc.equal(rows.column("status"), CLAIMED)).to_pylist()
    return LedgerSnapshot(
        set(rows.column("path").to_pylist()),
        [OpenClaim(r["path"], r[PARTITION_COLUMN], r["run_id"]) for r in sorted(open_rows, key=lambda r: r["path"])],
        _fragmented(table),
    )


# The sensor reads the whole ledger every tick, at about 1 ms per data file on local disk (more on
# ADLS: one request each), and each run's claim and record MERGEs add files: 1,000 files (a few weeks
# of runs) took 0.93 s to read, 0.07 s once compacted to one per day (50), in 0.5 s.
FRAGMENTED_SLACK = 64


def compact_if_fragmented(uri: str, storage_options: Optional[dict[str, Any]] = None,
                          slack: int = FRAGMENTED_SLACK) -> Optional[dict[str, int]]:
    """Compact the ledger (delta-rs OPTIMIZE, one file per day) once it holds more than two data files
    per day plus `slack`; returns what it did, or None. Its commit changes no row (`dataChange`
    false): a run's MERGE that loses the race to it is retried (`lib.delta.committed`), and one that
    wins makes it fail here, to be tried again on a later tick."""
    table = _table(uri, storage_options)
    if table is None or not _fragmented(table, slack):
        return None
    files = len(table.file_uris())
    metrics = table.optimize.compact()
    return {"files_before": files, "files_removed": int(metrics["numFilesRemoved"]),
            "files_added": int(metrics["numFilesAdded"])}


def _fragmented(table, slack: int = FRAGMENTED_SLACK) -> bool:
    """More than two data files per day plus `slack` (from the loaded log: no read)."""
    return len(table.file_uris()) > 2 * len(table.partitions()) + slack


def failed_rows(failures: Sequence[FailedFile], root: str, now: dt.datetime):
    """The ledger rows (an Arrow table) recording `failures`, paths stored relative to `root`."""
    import pyarrow as pa

    columns: dict[str, list] = {name: [] for name in arrow_schema().names}
    for f in failures:
        values = {
            "path": stored_path(f.path, root),
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
    root: str,
    storage_options: Optional[dict[str, Any]] = None,
    now: Optional[dt.datetime] = None,
) -> list[str]:
    """Record `failures` (absolute URIs) `failed`, stored relative to the landing root `root`:
    a new row for a file not in the ledger (creating the table, partitioned by `ingest_date`, if
    bronze never has), and the status (and run) of a row still `claimed` replaced, by one MERGE
    on `path`; a file with a final status is left alone. Returns the paths (absolute) recorded.
    Idempotent: the sensor writes again on its next tick when a write failed, and a path is in
    the ledger at most once. From then on the sensor sees the file as done, and bronze does not
    read it (NOT_READ)."""
    from deltalake import write_deltalake

    table = _table(uri, storage_options)
    final: set[str] = set()
    if table is not None:
        snapshot = read_for_sensor(uri, root, storage_options)
        final = snapshot.paths - {c.path for c in snapshot.open_claims}
    todo: dict[str, FailedFile] = {}
    for f in failures:
        if ledger_path(f.path) not in final:
            todo.setdefault(ledger_path(f.path), f)
    if not todo:
        return []
    rows = failed_rows(list(todo.values()), root, now or clock.now())
    if table is None:
        write_deltalake(
            uri, rows, mode="append", partition_by=[PARTITION_COLUMN], storage_options=storage_options or None
        )
    else:
        (
            table.merge(rows, predicate="t.path = s.path", source_alias="s", target_alias="t")
            .when_matched_update({"status": "s.status", "run_id": "s.run_id"}, predicate=f"t.status = {_sql_string(CLAIMED)}")
            .when_not_matched_insert_all()
            .execute()
        )
    return sorted(todo)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def given_uri(path: str, root: str) -> str:
    """A path an operator gives, as an absolute URI: a URI as is, an absolute local path as its
    file:// URI, anything else relative to the landing root `root` (as the ledger stores it)."""
    if "://" in path:
        return path
    if path.startswith("/"):
        return f"file://{os.path.normpath(path)}"
    return from_ledger_path(path, root)


def requeue(
    uri: str, paths: Iterable[str], root: str, storage_options: Optional[dict[str, Any]] = None
) -> list[str]:
    """Turn the `failed` rows of `paths` (URIs, absolute local paths or paths relative to the
    landing root `root`: `given_uri`), stored relative to `root` or, in a ledger written before
    paths were relative, absolute, back into claims of their own day with no run: the sensor then
    requests those files again for that day (under a new run key, with fresh attempts). Their day,
    not today: a file belongs to one day, and a run that died after storing some of its rows left
    them in that day, where the batch's write replaces them (a file re-queued to today was read
    into both days). Rows of any other status are left alone (an ingested file is never read
    twice). Returns the paths (absolute) re-queued."""
    wanted: set[str] = set()
    for path in paths:
        absolute = ledger_path(given_uri(path, root))
        wanted |= {absolute, to_ledger_path(absolute, root)}
    table = _table(uri, storage_options)
    if table is None or not wanted:
        return []
    stored = {r["path"] for r in _rows(table, columns=["path", "status"]) if status_code(r["status"]) == FAILED}
    failed = sorted(stored & wanted)
    if not failed:
        return []
    literals = ", ".join(_sql_string(p) for p in failed)
    failed_status = f"(status = {_sql_string(FAILED)} OR status LIKE {_sql_string(FAILED + ':%')})"

    def update(_marker: str) -> None:  # on the latest version: a lost race (a run's MERGE, the compaction) is retried
        _table(uri, storage_options).update(
            updates={"status": _sql_string(CLAIMED), "run_id": "NULL"}, predicate=f"path IN ({literals}) AND {failed_status}"
        )

    committed(update, uri)
    return sorted({from_ledger_path(p, root) for p in failed})


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


def _locations(lake_root: Optional[str], landing_uri: Optional[str]) -> tuple[str, dict[str, Any], str]:
    """(ledger uri, its storage options, landing root) of `--lake` and `--landing`, else of the
    deployment's lake and landing resources as the code location builds them (EnvVar secrets
    resolved). With `--lake` alone, the landing zone is that lake's (`NETFLIX_LANDING_URI` aside),
    as the local deployment places it."""
    from ..resources.lake import LakeResource
    from ..resources.landing import LandingZoneResource

    from ..deployments import resources_for

    deployment = {} if lake_root else resources_for()
    lake = LakeResource(root=lake_root) if lake_root else deployment["lake"].process_config_and_initialize()
    if landing_uri:
        landing = LandingZoneResource(uri=landing_uri)
    elif lake_root:
        landing = LandingZoneResource.from_env(lake.landing_uri).process_config_and_initialize()
    else:
        landing = deployment["landing"].process_config_and_initialize()
    return lake.table_uri("bronze", LEDGER_TABLE), lake.storage_options(), landing.root_uri()


def _given(path: str) -> str:
    # On the command line, `./x.csv` and `../x.csv` are local paths (relative to the working
    # directory); other relative paths are relative to the landing zone, as `show` and the
    # `no_failed_files` check print them.
    return os.path.abspath(path) if path.startswith(("./", "../")) else path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netflix_assets.bronze.ledger_store", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", help="lake root (default: NETFLIX_LAKE_URI / the deployment's lake)")
    parser.add_argument(
        "--landing",
        help="landing zone, what ledger paths are relative to (default: NETFLIX_LANDING_URI / the deployment's, "
        "or the landing folder of --lake)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="a day's files grouped by status")
    show.add_argument("--date", type=dt.date.fromisoformat, default=None, help="YYYY-MM-DD (default: today, UTC, or NETFLIX_TODAY)")
    show.add_argument("--status", help="only this status code (e.g. failed)")
    again = commands.add_parser("requeue", help="give files recorded `failed` back to the sensor")
    again.add_argument(
        "paths", nargs="+", metavar="PATH",
        help="a URI, a local path (absolute, or starting with ./ or ../) or a path relative to the landing zone",
    )
    args = parser.parse_args(argv)

    uri, options, root = _locations(args.lake, args.landing)
    if args.command == "show":
        day = args.date or clock.today()
        print(format_day(read_ledger(uri, root, options, day=day, status=args.status), day))
        return 0
    paths = [_given(p) for p in args.paths]
    done = requeue(uri, paths, root, options)
    for path in done:
        print(f"re-queued {path}")
    asked = {ledger_path(given_uri(p, root)) for p in paths}
    for path in sorted(asked - set(done)):
        print(f"not re-queued (no `failed` row): {path}", file=sys.stderr)
    return 0 if asked <= set(done) else 1


if __name__ == "__main__":
    sys.exit(main())
