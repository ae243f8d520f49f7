"""Delta tables of the lake: how they are laid out, written, read and counted. No Dagster import:
the IO manager, the checks, the ledger, the Databricks Pipes task (shipped in its wheel) and the
plain-PySpark baseline all share this module, so a write rule (the partition predicate, the
statistics columns, the retry of a lost commit race, the commit tag) exists once.

Facts the Delta transaction log already holds are read without a Spark job (delta-rs): a Spark
action costs 0.2-0.5 s on a laptop however small the table (scheduling, planning, a Delta
snapshot), and a run used to spend ~55 of them on questions the log answers in milliseconds:
what the last commit wrote (row count, files, bytes) and how many rows each partition holds
(the `numRecords` statistic of every added file). delta-rs reads the log directly, on local disk
or on ADLS with the lake's storage options; it is pinned in the project and in the Databricks
cluster libraries. Whenever the log cannot answer exactly (a file written without statistics, a
table that may hold deletion vectors, a table feature delta-rs does not read, no delta-rs on the
cluster), those functions return None and the caller asks Spark.

Everything goes through the DataFrame/SQL API that classic and Spark Connect sessions share (no
py4j `DeltaTable`), so it runs unchanged on Databricks serverless.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Optional, Sequence

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The daily partition column of every table (the data contract's `ingest_date`, UTC).
PARTITION_COLUMN = "ingest_date"


def partition_predicate(start: dt.date, end: dt.date, narrower: Optional[str] = None) -> str:
    """The rows of the `ingest_date` partitions in [start, end), and of those only the rows matching
    `narrower` when given (an incremental batch): what one write replaces."""
    predicate = f"{PARTITION_COLUMN} >= DATE'{start}' AND {PARTITION_COLUMN} < DATE'{end}'"
    return f"{predicate} AND ({narrower})" if narrower else predicate


# ------------------------------------------------------------------ layout

# The columns replace predicates filter on: a keyed refresh's show_id, a bronze batch's
# `_source_file`, the ledger's `path`. A new table keeps file statistics (min/max/null counts)
# on those only: Delta's default, the first 32 columns, computes min/max of every title,
# description and cast list at each write, and statistics on one column instead took 13 % off
# the baseline's 100k run (2 alternated pairs). `numRecords` is always kept: row counts come
# from it. A table with none of these columns keeps Delta's default.
STATS_COLUMNS = ("show_id", "_source_file", "path")


# Every table stays Delta reader version 1 with no table features, for the readers that serve it
# (Synapse serverless SQL, Power BI, delta-rs' row counts: the data contract). Databricks' workspace
# setting "Auto-enable deletion vectors" turns them on for new tables unless the table says otherwise.
NO_DELETION_VECTORS = {"delta.enableDeletionVectors": "false"}


def new_table_options(columns: Sequence[str]) -> dict[str, str]:
    """Writer options that set a new Delta table's properties (an existing table keeps its own)."""
    present = [c for c in STATS_COLUMNS if c in columns]
    return {**NO_DELETION_VECTORS, **({"delta.dataSkippingStatsColumns": ",".join(present)} if present else {})}


def portable_types(df: "DataFrame") -> "DataFrame":
    """`df` with its string columns cast to the SQL type `string`, so that its table's schema is
    readable by Delta readers other than Spark (delta-rs: the sensor's ledger reads, the commit
    reads below, the report; Synapse).

    Why: over Spark Connect (pyspark 4.2), a string type that the client sends as a Python
    `StringType()` (a `mapInArrow` output schema, `cast(StringType())`) reaches the server as an
    explicit `UTF8_BINARY` collation, and Delta writes it as `string collate UTF8_BINARY`, which
    delta-rs 1.6 refuses ("Unsupported Delta table type"); a type named in SQL is parsed by the
    server as the plain type (measured on both, one table each). Only top-level columns: no table
    here has a nested string type built on the client (gold titles' `_first_ingested` struct holds
    a stored column's string, not a client literal's). On a classic session the casts change
    nothing and the optimizer removes them."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    def plain(f: "T.StructField"):
        column = F.col(f"`{f.name}`")
        if isinstance(f.dataType, T.StringType) and f.dataType.isUTF8BinaryCollation():
            return column.cast("string").alias(f.name, metadata=f.metadata)
        return column

    return df.select([plain(f) for f in df.schema.fields])


# ------------------------------------------------------------------ writes


# Delta's optimistic concurrency: a commit that lost a race with another writer fails with
# one of these (the Java class or its error class, whichever the session reports; delta-rs's
# CommitFailedError).
CONFLICTS = (
    "ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException", "ConcurrentWriteException", "MetadataChangedException",
    "ProtocolChangedException", "DELTA_CONCURRENT_", "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED",
    "CommitFailedError",
)
# Of those, the ones that say nothing about the rows this write replaces: the table's schema or
# protocol moved (two first writes creating a table, two runs adding a column), or another
# transaction of the same application committed. Writing the same DataFrame again is then right.
# A conflict on the rows themselves (files added to or removed from this write's partition) is
# not retried: the DataFrame was computed from inputs read before the other writer committed,
# so writing it again would silently replace that writer's rows with stale ones. The run fails
# instead, and its re-run (the sensor retries a batch) starts from the new state. Runs of one
# day do not meet in the first place: the per-day run limit in both dagster.yaml files.
SCHEMA_CONFLICTS = ("MetadataChangedException", "ProtocolChangedException", "ConcurrentTransactionException",
                    "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED")
COMMIT_ATTEMPTS = 5
COMMIT_BACKOFF_SECONDS = 0.5


def is_conflict(error: BaseException, kinds: Sequence[str] = CONFLICTS) -> bool:
    text = f"{type(error).__name__} {error}"
    return any(name in text for name in kinds)


class ConcurrentWrite(Exception):
    """Another writer changed the rows this write replaces, after its inputs were read."""


def committed(write: Callable[[str], None], uri: str, attempts: int = COMMIT_ATTEMPTS,
              sleep: Callable[[float], None] = time.sleep, retry: Sequence[str] = CONFLICTS,
              on_retry: Optional[Callable[[], None]] = None) -> str:
    """Run `write(marker)`, one Delta commit that tags itself `userMetadata=marker`, retrying a
    lost race of the kinds `retry` up to `attempts` times with jittered exponential backoff
    (`on_retry()` before each retry); returns the marker (for `commit_metadata`). Then the crash
    point after this table's commit (`lib.faults`). The default retries every conflict: right for
    a write that decides its rows when it runs (a MERGE); `write_partitions` passes SCHEMA_CONFLICTS."""
    from .faults import after_commit

    marker = f"netflix:{uuid.uuid4().hex}"
    for attempt in range(1, attempts + 1):
        try:
            write(marker)
            break
        except Exception as err:  # noqa: BLE001 - only commit conflicts are retried
            if is_conflict(err) and not is_conflict(err, retry):
                raise ConcurrentWrite(
                    f"{uri}: another run changed the rows this write replaces since its inputs were read "
                    f"({type(err).__name__}); nothing was written. Run it again: it starts from the new state."
                ) from err
            if attempt == attempts or not is_conflict(err, retry):
                raise
            if on_retry is not None:
                on_retry()
            sleep(COMMIT_BACKOFF_SECONDS * 2 ** (attempt - 1) * (1 + random.random()))
    after_commit(uri)
    return marker


def sql_in(column: str, values: Sequence[str]) -> str:
    """`column IN ('a', 'b')` with SQL string literals escaped."""
    literals = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
    return f"{column} IN ({literals})" if values else "FALSE"


# Delta checks that every row a replaceWhere writes matches its predicate, but it evaluates the
# predicate as written, comparing each row with every literal of an IN list: a keyed refresh's
# `show_id IN (27,000 keys)` of real titles took 80.5 s to write with that check and 2.7 s without it
# (one partition of 701,300 rows); `benchmarks.replace_check`: 20,000 keys 2.6-4.3 s checked as below
# against 14.8-15.8 s by Delta, 1,000 keys ~2 s either way (BENCHMARKS.md). The same predicate in a
# DataFrame goes through Spark's optimizer, which turns a long IN list into a hash set (InSet). So a write
# checks its own rows (`rows_within`) and turns Delta's check off where the session lets it
# (Databricks serverless accepts only listed settings: there Delta's check stays on as well).
REPLACE_WHERE_CHECK = "spark.databricks.delta.replaceWhere.constraintCheck.enabled"


def rows_within(df: DataFrame, predicate: str, uri: str) -> DataFrame:
    """`df` whose write fails, before anything is committed, at its first row that `predicate`
    does not select (NULL included: a row a re-run's replaceWhere would not replace)."""
    from pyspark.sql import functions as F

    shown = predicate if len(predicate) <= 300 else predicate[:300] + "..."
    checked = F.when(F.coalesce(F.expr(predicate), F.lit(False)), F.col(PARTITION_COLUMN)).otherwise(
        F.raise_error(F.lit(f"{uri}: a written row is outside the rows this write replaces ({shown})"))
    )
    # The column keeps its metadata (its comment, `with_comments`).
    return df.withColumn(PARTITION_COLUMN, checked.alias(PARTITION_COLUMN, metadata=df.schema[PARTITION_COLUMN].metadata))


def _own_check_only(spark: SparkSession) -> None:
    try:
        spark.conf.set(REPLACE_WHERE_CHECK, "false")
    except Exception:  # noqa: BLE001 - a session that refuses the setting keeps Delta's check too
        pass


def write_partitions(df: DataFrame, uri: str, start: dt.date, end: dt.date, narrower: Optional[str] = None,
                     on_retry: Optional[Callable[[], None]] = None) -> str:
    """Replace exactly the `ingest_date` partitions in [start, end) with `df`
    (only their rows matching `narrower`, when given: an incremental batch); returns the
    commit's marker (`committed`, which calls `on_retry` before writing `df` again).

    `replaceWhere` makes a re-run replace, never append; a row outside the predicate fails
    the write before its commit (`rows_within`), so a wrong date or key fails loudly.
    """
    if PARTITION_COLUMN not in df.columns:
        raise ValueError(f"{uri}: output lacks the {PARTITION_COLUMN} column")
    predicate = partition_predicate(start, end, narrower)
    df = rows_within(portable_types(df), predicate, uri)
    _own_check_only(df.sparkSession)
    return committed(
        lambda marker: (
            df.write.format("delta")
            .options(**new_table_options(df.columns))
            .option("mergeSchema", "true")
            .option("userMetadata", marker)
            .mode("overwrite")
            .option("replaceWhere", predicate)
            .partitionBy(PARTITION_COLUMN)
            .save(uri)
        ),
        uri,
        retry=SCHEMA_CONFLICTS,
        on_retry=on_retry,
    )


def save_table(df: DataFrame, uri: str) -> str:
    """Replace a whole unpartitioned table with `df`; returns the commit's marker."""
    df = portable_types(df)
    return committed(
        lambda marker: df.write.format("delta").options(**new_table_options(df.columns)).option("userMetadata", marker)
        .mode("overwrite").option("overwriteSchema", "true").save(uri),
        uri,
        retry=SCHEMA_CONFLICTS,
    )


# Observed metrics reach a classic session on its listener bus, just after the action returns; a
# session that never reports them (an action that did not run the observed plan) must not hang a write.
OBSERVATION_WAIT_SECONDS = 30.0


def observe(
    df: DataFrame, metrics: Mapping[str, str], keys: Sequence[Sequence[str]] = ()
) -> tuple[DataFrame, Callable[[], Optional[dict[str, Any]]]]:
    """`df` with `metrics` (name -> SQL aggregate over its rows) computed by the first action that
    runs it, such as its write, in the same pass over the rows; and a function that returns them
    once that action is done (JSON-ready values), or None when the session did not report them.
    `keys`: key columns whose rows the metrics may count by number within the key
    (`transforms.quality.key_metrics`); the numbers are observed, never written.

    Classic and Spark Connect sessions each have their own `Observation` class; the DataFrame's
    says which. Call the function only after the action succeeded: before, a classic session waits."""
    import threading

    from pyspark.sql import functions as F

    if type(df).__module__.startswith("pyspark.sql.connect"):
        from pyspark.sql.connect.observation import Observation
    else:
        from pyspark.sql.observation import Observation
    from ..transforms.quality import key_number_column, numbered

    observation = Observation(f"write_{uuid.uuid4().hex}")
    try:
        observed = df
        for columns in keys:
            observed = numbered(observed, columns)
        observed = observed.observe(observation, *[F.expr(sql).alias(name) for name, sql in metrics.items()])
        observed = observed.drop(*[key_number_column(columns) for columns in keys])
        observed.schema  # analysed here: Spark Connect analyses lazily, at the write
    except Exception:  # noqa: BLE001 - a metric these rows cannot compute never fails the write:
        return df, lambda: None  # its check queries the table instead, and that query says why

    def values() -> Optional[dict[str, Any]]:
        got: dict[str, Any] = {}

        def wait() -> None:
            try:
                got.update(observation.get)
            except Exception:  # noqa: BLE001 - not reported (Spark Connect raises): the caller queries
                pass

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        waiter.join(OBSERVATION_WAIT_SECONDS)
        if waiter.is_alive() or set(got) != set(metrics):
            return None
        return {name: _json_value(value) for name, value in got.items()}

    return observed, values


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return float(value) if hasattr(value, "__float__") else str(value)


def with_comments(df: DataFrame, descriptions: Mapping[str, str]) -> DataFrame:
    """`df` with each described column's comment in its schema: a new Delta table is born documented.

    One projection, so one analysis of the plan: a `withMetadata` per column asked for the schema
    of a plan one step longer each time, which on Spark Connect is a request to the server (275
    of the 508 schema requests of a one-file run on the bundled lake, counted by wrapping the client)."""
    from pyspark.sql import functions as F

    if not descriptions:
        return df
    return df.select([
        F.col(f"`{f.name}`").alias(f.name, metadata={**f.metadata, "comment": descriptions[f.name]})
        if f.name in descriptions else F.col(f"`{f.name}`")
        for f in df.schema.fields
    ])


def comment_columns(spark: SparkSession, uri: str, descriptions: Mapping[str, str],
                    storage_options: Optional[Mapping[str, str]] = None) -> list[str]:
    """Set the column comments of the Delta table at `uri` that differ from `descriptions`, in one
    metadata commit; returns the columns changed ([] on every write but a table's first with new text).

    Why a separate commit: an append or a `replaceWhere` overwrite with `mergeSchema` keeps an
    existing column's metadata (measured on Delta 4.4), so a table created before its columns
    were described, or whose text changed, is updated here. Cosmetic: a lost race is retried,
    and after that the next write tries again."""
    from deltalake import DeltaTable

    current = {f.name: (f.metadata or {}).get("comment") for f in DeltaTable(uri, storage_options=storage_options).schema().fields}
    changed = [c for c, text in descriptions.items() if c in current and current[c] != text]
    if not changed:
        return []
    clauses = ", ".join(f"`{c}` COMMENT '" + descriptions[c].replace("\\", "\\\\").replace("'", "\\'") + "'" for c in changed)
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            spark.sql(f"ALTER TABLE delta.`{uri}` ALTER COLUMN {clauses}")
            return changed
        except Exception as err:  # noqa: BLE001: only a lost race is retried
            if attempt == COMMIT_ATTEMPTS or not is_conflict(err):
                raise
            time.sleep(COMMIT_BACKOFF_SECONDS * attempt)
    return changed


# How Spark says there is no Delta table at a path (no folder; a folder or file without a Delta
# log), on Delta 4.4 locally and on Databricks.
_NO_TABLE = frozenset({"PATH_NOT_FOUND", "DELTA_TABLE_NOT_FOUND", "DELTA_MISSING_DELTA_TABLE", "DELTA_PATH_DOES_NOT_EXIST"})


def read_table(spark: SparkSession, uri: str) -> Optional[DataFrame]:
    """The Delta table at `uri`, or None when there is none. Through the DataFrame API only (no
    py4j `DeltaTable.isDeltaTable`), so it works on a classic and a Spark Connect session alike."""
    from pyspark.errors import AnalysisException

    try:
        df = spark.read.format("delta").load(uri)
        df.schema  # a Spark Connect frame is analysed lazily: a missing table must fail here
    except AnalysisException as err:
        if err.getCondition() in _NO_TABLE:
            return None
        raise
    return df


# ------------------------------------------------------------------ the log


def commit_metadata(
    spark: SparkSession, uri: str, storage_options: Optional[dict[str, str]] = None, marker: Optional[str] = None,
    *, read_log: bool = True,
) -> dict[str, Any]:
    """Row count and version of the commit tagged `marker` (`write_partitions`, `save_table`),
    else of the table's latest commit, read from the Delta log (by delta-rs, no Spark job;
    by Spark's `DESCRIBE HISTORY` when delta-rs cannot read it, or with `read_log=False`: a
    Databricks task, where delta-rs has none of the cluster's credentials). The marker matters
    when runs overlap: the latest commit may be another run's."""
    last = None
    if read_log:
        last = last_commit(uri, storage_options) if marker is None else commit_with_marker(uri, marker, storage_options)
    if last is None:
        history = spark.sql(f"DESCRIBE HISTORY delta.`{uri}` LIMIT 50")
        if marker is not None:
            history = history.where(history["userMetadata"] == marker)
        row = history.select("version", "operation", "operationMetrics").first()
        last = row.asDict() if row is not None else {}
    if not last:  # nothing written, so nothing committed
        return {"dagster/row_count": 0, "delta_operation": "none (no rows to add or remove)"}
    metrics = last["operationMetrics"] or {}
    rows = int(metrics.get("numOutputRows", 0))
    return {
        "dagster/row_count": rows,
        "delta_version": int(last["version"]),
        "delta_operation": last["operation"],
        "delta_files_written": int(metrics.get("numFiles", 0)),
        "delta_bytes_written": int(metrics.get("numOutputBytes", 0)),
    }


def _table(uri: str, storage_options: Optional[dict[str, str]]):
    from deltalake import DeltaTable

    return DeltaTable(uri, storage_options=storage_options or None)


def last_commit(uri: str, storage_options: Optional[dict[str, str]] = None) -> Optional[dict[str, Any]]:
    """{version, operation, operationMetrics} of the table's latest commit, or None."""
    try:
        [commit] = _table(uri, storage_options).history(1)
    except Exception:  # noqa: BLE001 - any doubt: the caller asks Spark
        return None
    if "version" not in commit or "operation" not in commit:
        return None
    return {"version": int(commit["version"]), "operation": commit["operation"],
            "operationMetrics": commit.get("operationMetrics") or {}}


def commit_with_marker(
    uri: str, marker: str, storage_options: Optional[dict[str, str]] = None, limit: int = 50
) -> Optional[dict[str, Any]]:
    """{version, operation, operationMetrics} of the commit whose `userMetadata` is `marker`
    (among the latest `limit`): a run's own commit, whoever committed after it. {} when there
    is none (a write with nothing to add or remove commits nothing); None when the log is unreadable."""
    try:
        history = _table(uri, storage_options).history(limit)
    except Exception:  # noqa: BLE001 - any doubt: the caller asks Spark
        return None
    for commit in history:
        if commit.get("userMetadata") == marker and "version" in commit and "operation" in commit:
            return {"version": int(commit["version"]), "operation": commit["operation"],
                    "operationMetrics": commit.get("operationMetrics") or {}}
    return {}


class PartitionFiles(NamedTuple):
    """One `ingest_date` partition's files in the table's current snapshot: rows, and the oldest
    and newest write time (ms, the add actions' `modificationTime`: when it was last rewritten)."""

    rows: int
    oldest: int
    newest: int


def partition_files(uri: str, storage_options: Optional[dict[str, str]] = None) -> Optional[dict[dt.date, PartitionFiles]]:
    """`PartitionFiles` per partition, from the Delta log (no Spark job), or None when the log
    cannot say it."""
    import pyarrow as pa

    try:
        table = _table(uri, storage_options)
        # A deletion vector hides rows that its file's numRecords still counts, and delta-rs
        # does not list them: a table that may hold any (Databricks enables them by default)
        # is read by Spark.
        if "deletionVectors" in (table.protocol().reader_features or []):
            return None
        adds = pa.table(table.get_add_actions(flatten=True))
    except Exception:  # noqa: BLE001
        return None
    partition = f"partition.{PARTITION_COLUMN}"
    columns = (partition, "num_records", "modification_time")
    if any(c not in adds.column_names or adds.column(c).null_count for c in columns):
        return None
    files: dict[dt.date, PartitionFiles] = {}
    for day, rows, at in zip(*(adds.column(c).to_pylist() for c in columns)):
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        seen = files.get(day)
        files[day] = PartitionFiles(int(rows), int(at), int(at)) if seen is None else PartitionFiles(
            seen.rows + int(rows), min(seen.oldest, int(at)), max(seen.newest, int(at)))
    return files


def partition_row_counts(uri: str, storage_options: Optional[dict[str, str]] = None) -> Optional[dict[dt.date, int]]:
    """Rows per `ingest_date` partition, summed from the add actions' `numRecords`, or None."""
    files = partition_files(uri, storage_options)
    return None if files is None else {day: f.rows for day, f in files.items()}