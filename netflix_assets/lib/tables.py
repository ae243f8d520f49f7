"""Reading Delta tables of the lake and describing them as Dagster metadata."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Optional, Sequence

import dagster as dg

from ..partitions import PARTITION_COLUMN
from .delta_layout import new_table_options

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


def commit_metadata(spark: SparkSession, uri: str, storage_options: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Row count and version of the table's latest commit, read from the Delta log
    (by delta-rs, no Spark job; by Spark's `history(1)` when delta-rs cannot read it)."""
    from .delta_log import last_commit

    last = last_commit(uri, storage_options)
    if last is None:
        from delta.tables import DeltaTable

        last = DeltaTable.forPath(spark, uri).history(1).select("version", "operation", "operationMetrics").first().asDict()
    metrics = last["operationMetrics"] or {}
    rows = int(metrics.get("numOutputRows", 0))
    return {
        "dagster/row_count": rows,
        "delta_version": int(last["version"]),
        "delta_operation": last["operation"],
        "delta_files_written": int(metrics.get("numFiles", 0)),
        "delta_bytes_written": int(metrics.get("numOutputBytes", 0)),
    }


def sql_in(column: str, values: Sequence[str]) -> str:
    """`column IN ('a', 'b')` with SQL string literals escaped."""
    literals = ", ".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)
    return f"{column} IN ({literals})" if values else "FALSE"


def write_partitions(df: DataFrame, uri: str, start: dt.date, end: dt.date, narrower: Optional[str] = None) -> None:
    """Replace exactly the `ingest_date` partitions in [start, end) with `df`
    (only their rows matching `narrower`, when given: an incremental batch).

    `replaceWhere` makes a re-run replace, never append; Delta refuses to commit
    rows outside the predicate, so a wrong date fails loudly.
    """
    if PARTITION_COLUMN not in df.columns:
        raise ValueError(f"{uri}: output lacks the {PARTITION_COLUMN} column")
    predicate = f"{PARTITION_COLUMN} >= DATE'{start}' AND {PARTITION_COLUMN} < DATE'{end}'"
    if narrower:
        predicate = f"{predicate} AND ({narrower})"
    (
        df.write.format("delta")
        .options(**new_table_options(df.columns))
        .option("mergeSchema", "true")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .partitionBy(PARTITION_COLUMN)
        .save(uri)
    )


def column_schema(schema: StructType) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=field.dataType.simpleString(),
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
            for field in schema.fields
        ]
    )


def table_metadata(key: dg.AssetKey, schema: StructType, uri: str) -> dict[str, Any]:
    return {
        "dagster/column_schema": column_schema(schema),
        "dagster/table_name": ".".join(key.path),
        "dagster/uri": dg.MetadataValue.path(uri),
    }


def read_table(spark: SparkSession, uri: str) -> Optional[DataFrame]:
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, uri):
        return None
    return spark.read.format("delta").load(uri)


def partition_date(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)
