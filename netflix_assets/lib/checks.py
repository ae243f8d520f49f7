"""Asset-check building blocks shared by the layers.

Every check is declared with the asset's partitions (so it reads one partition,
never the whole table) and reads the persisted Delta table, not the in-memory
DataFrame: it checks what consumers will actually see.
"""


import datetime as dt
import warnings
from typing import Callable, Sequence

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..partitions import PARTITION_COLUMN, daily_partitions
from ..resources.lake import LakeResource
from ..resources.spark import SparkResource
from ..resources.databricks import SPARK_STEP
from .tables import partition_date, read_table

# Partitioned asset checks are a "preview" feature in dagster 1.13; the contract
# requires them (a check without partitions reads every partition), so say it once here.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning)

CheckBody = Callable[[DataFrame, dt.date, "TableReader"], dg.AssetCheckResult]


class TableReader:
    """Reads lake tables for one check evaluation."""

    def __init__(self, spark: SparkResource, lake: LakeResource):
        self.session = spark.get_session()
        self.lake = lake

    def table(self, key: Sequence[str]) -> DataFrame:
        df = read_table(self.session, self.lake.table_uri(*key))
        if df is None:
            raise dg.Failure(f"{'/'.join(key)} has no Delta table yet")
        return df

    def partition(self, key: Sequence[str], day: dt.date) -> DataFrame:
        return self.table(key).where(F.col(PARTITION_COLUMN) == F.lit(day))

    def partition_or_none(self, key: Sequence[str], day: dt.date) -> DataFrame | None:
        df = read_table(self.session, self.lake.table_uri(*key))
        return None if df is None else df.where(F.col(PARTITION_COLUMN) == F.lit(day))


def partition_check(
    key: Sequence[str],
    name: str,
    description: str,
    *,
    blocking: bool = False,
    additional_deps: Sequence[Sequence[str]] = (),
) -> Callable[[CheckBody], dg.AssetChecksDefinition]:
    """Decorator: `body(partition_df, day, reader) -> AssetCheckResult`."""

    def wrap(body: CheckBody) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=dg.AssetKey(list(key)),
            name=name,
            description=description,
            blocking=blocking,
            partitions_def=daily_partitions,
            additional_deps=[dg.AssetKey(list(k)) for k in additional_deps],
            required_resource_keys={"spark", "lake", *SPARK_STEP},
        )
        def _check(context: dg.AssetCheckExecutionContext):
            reader = TableReader(context.resources.spark, context.resources.lake)
            day = partition_date(context)
            result = body(reader.partition(key, day), day, reader)
            if not blocking and result.severity == dg.AssetCheckSeverity.ERROR and not result.passed:
                return dg.AssetCheckResult(
                    passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=result.metadata, description=result.description
                )
            return result

        return _check

    return wrap


def row_count_drop_check(key: Sequence[str]) -> dg.AssetChecksDefinition:
    """Warn when a partition holds fewer than half the rows of the previous one."""

    @partition_check(key, "row_count_not_halved", "Rows of the partition >= half of the previous partition's.")
    def _body(_: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        counts = (
            reader.table(key)
            .where(F.col(PARTITION_COLUMN) <= F.lit(day))
            .groupBy(PARTITION_COLUMN)
            .count()
            .orderBy(F.col(PARTITION_COLUMN).desc())
            .limit(2)
            .collect()
        )
        current = next((r["count"] for r in counts if r[PARTITION_COLUMN] == day), 0)
        previous = next((r for r in counts if r[PARTITION_COLUMN] != day), None)
        if previous is None:
            return dg.AssetCheckResult(passed=True, metadata={"rows": current, "previous_partition": "none"})
        return dg.AssetCheckResult(
            passed=current * 2 >= previous["count"],
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "rows": current,
                "previous_partition": str(previous[PARTITION_COLUMN]),
                "previous_rows": previous["count"],
            },
        )

    return _body


def key_check(key: Sequence[str], columns: Sequence[str], *, blocking: bool = True) -> dg.AssetChecksDefinition:
    """Blocking by default: the key columns are not null and unique within the partition."""
    name = "_".join(columns) + "_not_null_unique"

    @partition_check(key, name, f"({', '.join(columns)}) is not null and unique in the partition.", blocking=blocking)
    def _body(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        null_any = F.lit(False)
        for column in columns:
            null_any = null_any | F.col(column).isNull()
        row = df.agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(F.when(null_any, 1).otherwise(0)).alias("nulls"),
            F.count_distinct(*[F.col(c) for c in columns]).alias("distinct"),
        ).first()
        rows, nulls, distinct = row["rows"], row["nulls"] or 0, row["distinct"]
        duplicates = rows - nulls - distinct
        return dg.AssetCheckResult(
            passed=nulls == 0 and duplicates == 0,
            metadata={"rows": rows, "null_keys": nulls, "duplicate_keys": duplicates},
        )

    return _body
