"""Reading Delta tables of the lake and describing them as Dagster metadata."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import dagster as dg

from ..partitions import PARTITION_COLUMN
from .columns import describe
from .delta_layout import new_table_options, portable_types

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


def commit_metadata(
    spark: SparkSession, uri: str, storage_options: Optional[dict[str, str]] = None, marker: Optional[str] = None
) -> dict[str, Any]:
    """Row count and version of the commit tagged `marker` (`write_partitions`, `save_table`),
    else of the table's latest commit, read from the Delta log (by delta-rs, no Spark job;
    by Spark's `DESCRIBE HISTORY` when delta-rs cannot read it). The marker matters when
    runs overlap: the latest commit may be another run's."""
    from .delta_log import commit_with_marker, last_commit

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
              sleep: Callable[[float], None] = time.sleep, retry: Sequence[str] = CONFLICTS) -> str:
    """Run `write(marker)`, one Delta commit that tags itself `userMetadata=marker`, retrying a
    lost race of the kinds `retry` up to `attempts` times with jittered exponential backoff;
    returns the marker (for `commit_metadata`). Then the crash point after this table's commit
    (`lib.faults`). The default retries every conflict: right for a write that decides its rows
    when it runs (a MERGE); `write_partitions` passes SCHEMA_CONFLICTS."""
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
            sleep(COMMIT_BACKOFF_SECONDS * 2 ** (attempt - 1) * (1 + random.random()))
    after_commit(uri)
    return marker


def sql_in(column: str, values: Sequence[str]) -> str:
    """`column IN ('a', 'b')` with SQL string literals escaped."""
    literals = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
    return f"{column} IN ({literals})" if values else "FALSE"


def write_partitions(df: DataFrame, uri: str, start: dt.date, end: dt.date, narrower: Optional[str] = None) -> str:
    """Replace exactly the `ingest_date` partitions in [start, end) with `df`
    (only their rows matching `narrower`, when given: an incremental batch); returns the
    commit's marker (`committed`).

    `replaceWhere` makes a re-run replace, never append; Delta refuses to commit
    rows outside the predicate, so a wrong date fails loudly.
    """
    if PARTITION_COLUMN not in df.columns:
        raise ValueError(f"{uri}: output lacks the {PARTITION_COLUMN} column")
    predicate = f"{PARTITION_COLUMN} >= DATE'{start}' AND {PARTITION_COLUMN} < DATE'{end}'"
    if narrower:
        predicate = f"{predicate} AND ({narrower})"
    df = portable_types(df)
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


def column_schema(schema: StructType, descriptions: Optional[Mapping[str, str]] = None) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=field.dataType.simpleString(),
                description=descriptions.get(field.name),
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
            for field in schema.fields
        ]
    )


def table_metadata(key: dg.AssetKey, schema: StructType, uri: str) -> dict[str, Any]:
    return {
        "dagster/column_schema": column_schema(schema, describe(key.to_user_string(), schema.names)),
        "dagster/table_name": ".".join(key.path),
        "dagster/uri": dg.MetadataValue.path(uri),
    }


def with_comments(df: DataFrame, descriptions: Mapping[str, str]) -> DataFrame:
    """`df` with each described column's comment in its schema: a new Delta table is born documented."""
    for column, text in descriptions.items():
        df = df.withMetadata(column, {**df.schema[column].metadata, "comment": text})
    return df


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


def partition_date(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)
