"""The ledger's writes and reads for the bronze step: read the claims, claim new files,
record what became of them. The rules live in `ledger` (pure functions); the sensor's and
the command line's reads and writes in `ledger_store`.

Both writes are MERGEs on `path`:
- `claim` inserts a `claimed` row for each file no day holds yet, before bronze writes a
  row of it. MERGE reads the whole ledger, so of two runs that race for a file Delta
  commits one and fails the other with a conflict; `lib.delta.committed` retries it, and
  the retried MERGE finds the row and inserts nothing. The caller then reads the ledger
  again: a file is this run's only if the ledger says it belongs to this run's day.
- `record` sets the final rows of the run's claims (their day's rows only) after bronze
  and its quarantine are stored. A crash in between leaves `claimed` rows: the day's next
  run reads those files again (their rows are replaced, never appended), and no other day
  can take them.

They run with delta-rs (as `ledger_store` does for the sensor): a MERGE into the small
ledger costs ~50 ms there against ~1.5 s as a Spark job, three times per bronze run
(bronze's step on the tutorial file, warm, 2 cores: ~2 s, against ~5.5 s with Spark SQL MERGEs). delta-rs detects
the same conflicts (`CommitFailedError: a concurrent transaction added new data`). Where
delta-rs is not installed, or cannot read or write the ledger (a credential only Spark has,
a table feature it lacks), the same reads and MERGEs run through Spark SQL.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Optional, Sequence

from ..lib.faults import reached
from ..lib.delta import committed, is_conflict, new_table_options, read_table
from ..resources.landing import escape_undecodable
from .ledger import CLAIMED, LEDGER_SCHEMA, Claim, claims_from_rows, from_ledger_path, to_ledger_path

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
LEDGER_COLUMNS = [column.split()[0] for column in LEDGER_SCHEMA.split(",")]


def _delta_rs() -> bool:
    try:
        import deltalake  # noqa: F401
    except ImportError:
        return False
    return True


def read_claims(session: SparkSession, uri: str, root: str, storage_options: Optional[dict] = None) -> dict[str, Claim]:
    """path (a URI under `root`) -> claim, for every row of the ledger (empty without a ledger).
    Rows written before paths were relative are made relative first (once)."""
    if _delta_rs():
        try:
            return _read_claims_delta_rs(uri, root, storage_options)
        except Exception as err:  # noqa: BLE001 - Spark reads what delta-rs cannot
            if is_conflict(err):
                raise
            log.warning("ledger %s: read through Spark (delta-rs: %s)", uri, err)
    return _read_claims_spark(session, uri, root)


def _read_claims_delta_rs(uri: str, root: str, storage_options: Optional[dict]) -> dict[str, Claim]:
    from .ledger_store import _table, read_ledger

    table = _table(uri, storage_options)
    if table is None:
        return {}
    prefix = root.rstrip("/") + "/"
    if any(p.startswith(prefix) for p in table.to_pyarrow_table(columns=["path"]).column("path").to_pylist()):
        committed(
            lambda _marker: _table(uri, storage_options).update(
                updates={"path": f"substring(path, {len(prefix) + 1})"},
                predicate=f"starts_with(path, {_literal(prefix)}) AND character_length(path) > {len(prefix)}",
            ),
            uri,
        )
    rows = read_ledger(uri, root, storage_options)
    return claims_from_rows(rows)


def _read_claims_spark(session: SparkSession, uri: str, root: str) -> dict[str, Claim]:
    ledger = read_table(session, uri)
    if ledger is None:
        return {}
    rows = [r.asDict() for r in ledger.collect()]
    if any(to_ledger_path(r["path"], root) != r["path"] for r in rows):
        _relativize(session, uri, root)
    for row in rows:
        row["path"] = from_ledger_path(to_ledger_path(row["path"], root), root)
        if row.get("duplicate_of"):
            row["duplicate_of"] = from_ledger_path(to_ledger_path(row["duplicate_of"], root), root)
    return claims_from_rows(rows)


CLAIM = "claim"
RECORD = "record"
# The MERGE's clauses, as SQL (Spark) and as delta-rs calls.
_SQL = {
    CLAIM: f"WHEN MATCHED AND t.status = '{CLAIMED}' AND t.ingest_date = s.ingest_date THEN UPDATE SET t.run_id = s.run_id "
    "WHEN NOT MATCHED THEN INSERT *",
    RECORD: "WHEN MATCHED AND t.ingest_date = s.ingest_date THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
}


def claim(session: SparkSession, uri: str, root: str, rows: Sequence[tuple], storage_options: Optional[dict] = None) -> None:
    """Insert `rows` (ledger rows, paths as URIs) whose path no row holds yet; a `claimed` row
    of the same day takes the row's run_id (this run now reads it: the sensor sees it alive)."""
    if rows:
        _merge(session, uri, root, rows, CLAIM, storage_options)
    reached("after_claim")


def record(session: SparkSession, uri: str, root: str, rows: Sequence[tuple], storage_options: Optional[dict] = None) -> None:
    """Store the final rows of a run's claims: a row of the same path and day is replaced."""
    if rows:
        _merge(session, uri, root, rows, RECORD, storage_options)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _stored(rows: Sequence[tuple], root: str) -> list[tuple]:
    """Rows as the table holds them: paths (and `duplicate_of`) relative to the root, with
    undecodable bytes escaped (Parquet strings are UTF-8)."""
    def stored(uri):
        return None if uri is None else to_ledger_path(escape_undecodable(uri), root)

    return [(stored(row[0]), *row[1:-1], stored(row[-1])) for row in rows]


def _merge(session, uri: str, root: str, rows: Sequence[tuple], kind: str, storage_options: Optional[dict]) -> None:
    stored = _stored(rows, root)
    if _delta_rs():
        try:
            _merge_delta_rs(uri, stored, kind, storage_options)
            return
        except Exception as err:  # noqa: BLE001 - the MERGE is idempotent: Spark runs it again
            if is_conflict(err):
                raise
            log.warning("ledger %s: MERGE through Spark (delta-rs: %s)", uri, err)
    _ensure_table(session, uri)
    view = f"ledger_rows_{uuid.uuid4().hex}"
    session.createDataFrame(stored, LEDGER_SCHEMA).createOrReplaceTempView(view)
    try:
        committed(
            lambda _marker: session.sql(f"MERGE INTO delta.`{uri}` t USING {view} s ON t.path = s.path {_SQL[kind]}").collect(),
            uri,
        )
    finally:
        session.catalog.dropTempView(view)


def _merge_delta_rs(uri: str, stored: list[tuple], kind: str, storage_options: Optional[dict]) -> None:
    import pyarrow as pa
    from deltalake import DeltaTable

    from .ledger_store import arrow_schema

    schema = arrow_schema()
    source = pa.Table.from_pylist([dict(zip(LEDGER_COLUMNS, row)) for row in stored], schema=schema)
    options = storage_options or None

    def create(_marker: str) -> None:
        # mode="ignore": an existing table is left as it is; two creators race on version 0.
        DeltaTable.create(uri, schema, mode="ignore", partition_by=["ingest_date"], storage_options=options,
                          configuration=new_table_options(LEDGER_COLUMNS))

    committed(create, uri + "/_create")

    def merge(_marker: str) -> None:
        table = DeltaTable(uri, storage_options=options)
        merger = table.merge(source, predicate="t.path = s.path", source_alias="s", target_alias="t")
        if kind == CLAIM:
            merger = merger.when_matched_update(
                {"run_id": "s.run_id"}, predicate=f"t.status = {_literal(CLAIMED)} AND t.ingest_date = s.ingest_date"
            )
        else:
            merger = merger.when_matched_update_all(predicate="t.ingest_date = s.ingest_date")
        merger.when_not_matched_insert_all().execute()

    committed(merge, uri)


def _ensure_table(session: SparkSession, uri: str) -> None:
    """Create the empty ledger. Two runs creating it at once: one wins, the other's commit
    fails with ProtocolChangedException, and its retry finds the table."""
    def create(_marker: str) -> None:
        if read_table(session, uri) is None:
            session.createDataFrame([], LEDGER_SCHEMA).write.format("delta").options(
                **new_table_options(LEDGER_COLUMNS)
            ).partitionBy("ingest_date").mode("append").save(uri)

    committed(create, uri + "/_create")


def _relativize(session: SparkSession, uri: str, root: str) -> None:
    prefix = root.rstrip("/") + "/"
    literal = "'" + prefix.replace("\\", "\\\\").replace("'", "\\'") + "'"
    committed(
        lambda _marker: session.sql(
            f"UPDATE delta.`{uri}` SET path = substring(path, {len(prefix) + 1}) "
            f"WHERE startswith(path, {literal}) AND length(path) > {len(prefix)}"
        ).collect(),
        uri,
    )
