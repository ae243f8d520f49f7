"""Asset-check building blocks shared by the layers.

Every check is declared with the asset's partitions (so it reads one partition,
never the whole table) and reads the persisted Delta table, not the in-memory
DataFrame: it checks what consumers will actually see. The checks of one table run
together in one step (`table_checks`).

A check that fails says which rows broke the rule, not only how many: its description
names up to `SAMPLE` offenders (keys, files, groups), with the helpers of
`transforms/quality.py`, re-exported here for the layers' checks.
"""


import datetime as dt
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..partitions import PARTITION_COLUMN, daily_partitions
from ..resources.lake import LakeResource
from ..resources.spark import SparkResource
from ..resources.databricks import SPARK_RESOURCES
from ..transforms.quality import SAMPLE, key_check_name, key_verdict, naming, offenders  # noqa: F401 (re-exported)
from .delta import PartitionFiles, partition_files, partition_row_counts, read_table
from .tables import partition_date

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
        uri = self.lake.table_uri(*key)
        df = read_table(self.session, uri)
        if df is None:
            raise dg.Failure(
                f"{'/'.join(key)} has no Delta table yet at {uri}: materialize it for this partition, "
                "then run its checks again",
                metadata={"uri": uri},
            )
        return df

    def partition(self, key: Sequence[str], day: dt.date) -> DataFrame:
        return self.table(key).where(F.col(PARTITION_COLUMN) == F.lit(day))

    def partition_row_counts(self, key: Sequence[str], day: dt.date) -> dict[dt.date, int]:
        """Rows of each partition <= day: from the Delta log's file statistics (no Spark job),
        else counted by Spark."""
        counts = partition_row_counts(self.lake.table_uri(*key), self.lake.storage_options())
        if counts is None:
            rows = self.table(key).where(F.col(PARTITION_COLUMN) <= F.lit(day)).groupBy(PARTITION_COLUMN).count().collect()
            counts = {r[PARTITION_COLUMN]: r["count"] for r in rows}
        return {d: n for d, n in counts.items() if d <= day}

    def partition_rows(self, key: Sequence[str], day: dt.date) -> int:
        """Rows of one partition (0 if the table does not exist yet): from the Delta log (no
        Spark job), else counted by Spark."""
        counts = partition_row_counts(self.lake.table_uri(*key), self.lake.storage_options())
        if counts is not None:
            return counts.get(day, 0)
        df = self.partition_or_none(key, day)
        return 0 if df is None else df.count()

    def partition_files(self, key: Sequence[str]) -> dict[dt.date, PartitionFiles] | None:
        """Rows and write times of each partition's files, from the Delta log; None when the log
        cannot say (e.g. deletion vectors)."""
        return partition_files(self.lake.table_uri(*key), self.lake.storage_options())

    def partition_or_none(self, key: Sequence[str], day: dt.date) -> DataFrame | None:
        df = read_table(self.session, self.lake.table_uri(*key))
        return None if df is None else df.where(F.col(PARTITION_COLUMN) == F.lit(day))


@dataclass(frozen=True)
class PartitionCheck:
    """One check of one table's partition: `body(partition_df, day, reader) -> AssetCheckResult`."""

    key: tuple[str, ...]
    name: str
    description: str
    blocking: bool
    additional_deps: tuple[tuple[str, ...], ...]
    body: CheckBody

    @property
    def check_key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(list(self.key)), self.name)

    @property
    def spec(self) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            name=self.name,
            asset=dg.AssetKey(list(self.key)),
            description=self.description,
            blocking=self.blocking,
            additional_deps=[dg.AssetKey(list(k)) for k in self.additional_deps],
            partitions_def=daily_partitions,
        )

    def evaluate(self, df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        result = self.body(df, day, reader)
        severity = result.severity
        if not self.blocking and severity == dg.AssetCheckSeverity.ERROR and not result.passed:
            severity = dg.AssetCheckSeverity.WARN  # only blocking checks fail a run
        return dg.AssetCheckResult(
            asset_key=self.check_key.asset_key,
            check_name=self.name,
            passed=result.passed,
            severity=severity,
            metadata=result.metadata,
            description=result.description,
        )


def partition_check(
    key: Sequence[str],
    name: str,
    description: str,
    *,
    blocking: bool = False,
    additional_deps: Sequence[Sequence[str]] = (),
) -> Callable[[CheckBody], PartitionCheck]:
    """Decorator: `body(partition_df, day, reader) -> AssetCheckResult` becomes a `PartitionCheck`;
    `table_checks` turns a layer's checks into Dagster definitions."""

    def wrap(body: CheckBody) -> PartitionCheck:
        return PartitionCheck(tuple(key), name, description, blocking, tuple(tuple(k) for k in additional_deps), body)

    return wrap


def table_checks(checks: Sequence[PartitionCheck]) -> list[dg.AssetChecksDefinition]:
    """One `multi_asset_check` per table: all its checks run in one step on one read of the partition.

    A step costs a Dagster step, a fresh Delta snapshot read and, in production, a whole
    Databricks run (~20 s): one step per table instead of one per check. The checks stay
    separate in the UI and in selections (`can_subset`), and a failed blocking check still
    fails the step, which skips the table's downstream assets.
    """
    by_table: dict[tuple[str, ...], list[PartitionCheck]] = {}
    for c in checks:
        by_table.setdefault(c.key, []).append(c)
    defs = []
    for key, group in by_table.items():
        names = [c.name for c in group]
        if len(set(names)) != len(names):
            raise ValueError(f"{'/'.join(key)}: duplicate check names {names}")
        defs.append(_table_check_def(key, group))
    return defs


def _table_check_def(key: tuple[str, ...], group: list[PartitionCheck]) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        name="__".join(key) + "__checks",
        specs=[c.spec for c in group],
        description=f"The data-contract checks of {'/'.join(key)}, evaluated on one read of the partition.",
        can_subset=True,
        required_resource_keys=SPARK_RESOURCES,
    )
    def _checks(context: dg.AssetCheckExecutionContext):
        reader = TableReader(context.resources.spark, context.resources.lake)
        day = partition_date(context)
        df = reader.partition(key, day)
        selected = context.selected_asset_check_keys
        for c in group:
            if c.check_key in selected:
                yield c.evaluate(df, day, reader)

    return _checks


def row_count_drop_check(key: Sequence[str]) -> PartitionCheck:
    """Warn when a partition holds fewer than half the rows of the previous one."""

    @partition_check(key, "row_count_not_halved", "Rows of the partition >= half of the previous partition's.")
    def _body(_: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        counts = reader.partition_row_counts(key, day)
        current = counts.get(day, 0)
        previous = max((d for d in counts if d < day), default=None)
        if previous is None:
            return dg.AssetCheckResult(passed=True, metadata={"rows": current, "previous_partition": "none"})
        passed = current * 2 >= counts[previous]
        return dg.AssetCheckResult(
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows": current, "previous_partition": str(previous), "previous_rows": counts[previous]},
            description=None if passed else (
                f"partition {day} holds {current} rows, under half of partition {previous}'s {counts[previous]}"
            ),
        )

    return _body


def key_check(key: Sequence[str], columns: Sequence[str], *, blocking: bool = True) -> PartitionCheck:
    """Blocking by default: the key columns are not null and unique within the partition."""
    name = key_check_name(columns)

    @partition_check(key, name, f"({', '.join(columns)}) is not null and unique in the partition.", blocking=blocking)
    def _body(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        verdict = key_verdict(df, columns)
        return dg.AssetCheckResult(
            passed=verdict.passed,
            metadata={"rows": verdict.rows, "null_keys": verdict.null_keys, "duplicate_keys": verdict.duplicate_keys},
            description=verdict.description,
        )

    return _body
