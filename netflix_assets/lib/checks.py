"""Asset-check building blocks shared by the layers.

Every check is declared with the asset's partitions (so it reads one partition,
never the whole table) and reads the persisted Delta table, not the in-memory
DataFrame: it checks what consumers will actually see. The checks of one table run
together in one step (`table_checks`).

A check that is an aggregate over the partition's own rows (`aggregate_check`: nulls, allowed
values, ranges) is computed by the write itself: the IO manager observes its SQL aggregates while
it writes (`DataFrame.observe`, in the same pass over the rows) and records them with the commit's
Delta version; the check step uses them while the table is still at that version (nothing has
touched it since), else computes them all in one query. A key check (`key_check`) is observed too:
Spark refuses a distinct count in an observation, so the write numbers each key's rows (a window
over the key) and counts the rows numbered past 1; without observed values it queries the table
(`transforms.quality.key_verdict`). The window adds a shuffle to the write (~0.3 s on a laptop
however small the table) and saves the check's query (~0.6 s): on a warm session a write and
its key check took 1.01 s against 1.63 s on 6,000 cached rows, 6.4 s against 7.6 s on 5.7M rows
of a three-column key (medians of 5 and 3 alternated), and a full run of the bundled data spent
25 s in check steps against 34 s, 90 s in all against 96 s (2 alternated runs);
`benchmarks/key_check.py` measures it on `make bench`'s lakes. A keyed refresh writes part of
the partition: it observes its own rows, and the partition's values that follow from them and
from the values at the commit before are recorded (`transforms.quality.replaced_partition_metrics`:
the counts that were 0, the rows from the log); a check missing any of its values queries. The
other checks read other tables, so they query.

A recorded value is trusted under its name only while its SQL is the check's current one (a digest
of each metric's SQL is stored beside the values): a deploy that tightens a rule and keeps its name
makes the next check step query. And a write retried after a lost race records no values: Spark
completes an observation once, on the first attempt, whose rows may not be the ones committed.

A run tagged `netflix/checks=full` trusts no write: every check queries the table. The schedule
`daily_full_checks` (jobs.py) runs every check of yesterday's partition that way, so a wrong value
recorded by a write (a bug in what a write observes or derives) cannot pass unseen for more than a day;
any run of the checks can carry the tag on demand (the launchpad's tags).

A check that fails says which rows broke the rule, not only how many: its description
names up to `SAMPLE` offenders (keys, files, groups), with the helpers of
`transforms/quality.py`, re-exported here for the layers' checks.
"""


import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..partitions import PARTITION_COLUMN, daily_partitions
from ..resources.lake import LakeResource
from ..resources.spark import SparkResource
from ..resources.databricks import SPARK_RESOURCES
from ..transforms.quality import (  # noqa: F401 (re-exported)
    SAMPLE, KeyVerdict, key_check_name, key_metrics, key_verdict, naming, offenders,
)
from .delta import PartitionFiles, last_commit, partition_files, partition_row_counts, read_table
from .tables import partition_date

# Partitioned asset checks are a "preview" feature in dagster 1.13; the contract
# requires them (a check without partitions reads every partition), so say it once here.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning)

CheckBody = Callable[[DataFrame, dt.date, "TableReader"], dg.AssetCheckResult]
# An aggregate check's verdict: (its metrics' values, the partition, the day, the reader) -> result.
Verdict = Callable[[Mapping[str, Any], DataFrame, dt.date, "TableReader"], dg.AssetCheckResult]

# Definition metadata of a table the IO manager observes: {metric: SQL aggregate over the written rows}.
OBSERVED_METRICS_KEY = "observed_by_write"
# ... and the key columns whose rows the write numbers for those metrics: [[column, ...], ...].
OBSERVED_KEYS_KEY = "keys_numbered_by_write"
# Materialization metadata: {"delta_version": the commit's, "metrics": {metric: value},
# "definitions": {metric: digest of its SQL}} (`metric_definitions`).
OBSERVED_VALUES_KEY = "observed_checks"
# Check metadata: where an aggregate check's values came from.
AGGREGATES_FROM_KEY = "aggregates_from"
# Run tag: `full` makes every check step query its table, whatever its write recorded.
CHECKS_TAG = "netflix/checks"
FULL = "full"


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

    def written_aggregates(
        self, context: dg.AssetCheckExecutionContext, key: Sequence[str], metrics: Mapping[str, str]
    ) -> Optional["Aggregates"]:
        """The metrics observed by the write of the partition's latest materialization, if its
        commit is still the table's latest (`lib.checks.written_aggregates`)."""
        metadata = latest_materialization_metadata(context.instance, dg.AssetKey(list(key)), context.partition_key)
        if metadata is None:
            return None
        last = last_commit(self.lake.table_uri(*key), self.lake.storage_options())
        return written_aggregates(metadata, metrics, last and last["version"])

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
    # An aggregate check (`aggregate_check`): its (metric, SQL aggregate) pairs, metric names
    # prefixed with the check's; `body` is then its `Verdict`.
    metrics: tuple[tuple[str, str], ...] = ()
    # Key columns the metrics count by number within the key (a write observes them, a query of
    # the table cannot), and the body that queries the table when the write observed nothing.
    numbered_keys: tuple[tuple[str, ...], ...] = ()
    unobserved: Optional[CheckBody] = None

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

    def evaluate(
        self, df: DataFrame, day: dt.date, reader: TableReader, known: Sequence[Optional["Aggregates"]] = ()
    ) -> dg.AssetCheckResult:
        """`known`: the table's metric values the step already has (from the write, one query); the
        first holding all of the check's metrics serves. An aggregate check served by none queries
        them, a key check queries its way."""
        metadata = {}
        if not self.metrics:
            result = self.body(df, day, reader)
        else:
            aggregates = next((a for a in known if a is not None and all(n in a.values for n, _ in self.metrics)), None)
            if aggregates is None:
                aggregates = None if self.unobserved is not None else query_aggregates(df, dict(self.metrics))
            if aggregates is None:
                result = self.unobserved(df, day, reader)
                metadata[AGGREGATES_FROM_KEY] = QUERIED
            else:
                prefix = f"{self.name}__"
                values = {name.removeprefix(prefix): aggregates.values[name] for name, _ in self.metrics}
                result = self.body(values, df, day, reader)
                metadata[AGGREGATES_FROM_KEY] = aggregates.source
        severity = result.severity
        if not self.blocking and severity == dg.AssetCheckSeverity.ERROR and not result.passed:
            severity = dg.AssetCheckSeverity.WARN  # only blocking checks fail a run
        return dg.AssetCheckResult(
            asset_key=self.check_key.asset_key,
            check_name=self.name,
            passed=result.passed,
            severity=severity,
            metadata={**(result.metadata or {}), **metadata},
            description=result.description,
        )


@dataclass(frozen=True)
class Aggregates:
    """The values of a table's aggregate-check metrics, and where they came from."""

    values: Mapping[str, Any]
    source: str


def query_aggregates(df: DataFrame, metrics: Mapping[str, str]) -> Aggregates:
    """Every metric in one pass over the partition."""
    row = df.agg(*[F.expr(sql).alias(name) for name, sql in metrics.items()]).first()
    return Aggregates(row.asDict(), QUERIED)


QUERIED = "a query of the table"


def observed_values(metadata: Optional[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """A materialization's `{"delta_version": ..., "metrics": {...}}` (`OBSERVED_VALUES_KEY`), or None."""
    entry = (metadata or {}).get(OBSERVED_VALUES_KEY)
    data = getattr(entry, "data", entry)
    return data if isinstance(data, Mapping) else None


def latest_materialization_metadata(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str
) -> Optional[Mapping[str, Any]]:
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
    ).records or [None]
    return None if record is None or record.asset_materialization is None else record.asset_materialization.metadata


def metric_definitions(metrics: Mapping[str, str]) -> dict[str, str]:
    """{metric: a digest of its SQL}: stored beside the values a write records."""
    return {name: hashlib.sha256(sql.encode()).hexdigest()[:16] for name, sql in metrics.items()}


def trusted_values(data: Optional[Mapping[str, Any]], metrics: Mapping[str, str]) -> dict[str, Any]:
    """The recorded values (`data`: `observed_values`) of `metrics` (name -> SQL) computed under the
    same SQL as now: a value recorded under a name whose rule has changed since is not one of them."""
    if not data:
        return {}
    stored, current = data.get("definitions") or {}, metric_definitions(metrics)
    return {n: v for n, v in (data.get("metrics") or {}).items() if n in current and stored.get(n) == current[n]}


def written_aggregates(
    metadata: Mapping[str, Any], metrics: Mapping[str, str], current_version: Optional[int]
) -> Optional[Aggregates]:
    """The metrics (name -> SQL) the write of the partition's latest materialization observed or
    derived (its `metadata`; a write of part of the partition derives only some: `transforms.
    quality.replaced_partition_metrics`) under their current SQL, if that write's commit is still
    the table's latest (`current_version`: nothing can have changed the partition since); None if
    it has none of them."""
    data = observed_values(metadata)
    if data is None or current_version is None or data.get("delta_version") != current_version:
        return None
    values = trusted_values(data, metrics)
    return Aggregates(values, f"the write (Delta version {current_version})") if values else None


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


def aggregate_check(
    key: Sequence[str], name: str, description: str, metrics: Mapping[str, str], *, blocking: bool = False
) -> Callable[[Verdict], PartitionCheck]:
    """Decorator: a check that is a function of SQL aggregates over the partition's own rows
    (`metrics`: name -> aggregate; `ingest_date` may stand for the day). Its write computes them
    (`observed_by_writes`); `verdict(values, partition_df, day, reader)` decides, and reads the
    partition only to name offenders when it fails."""

    def wrap(verdict: Verdict) -> PartitionCheck:
        pairs = tuple((f"{name}__{metric}", sql) for metric, sql in metrics.items())
        return PartitionCheck(tuple(key), name, description, blocking, (), verdict, pairs)  # type: ignore[arg-type]

    return wrap


def write_observations(checks: Sequence[PartitionCheck]) -> dict[tuple[str, ...], dict[str, Any]]:
    """{table: definition metadata} saying what the table's writes observe for its checks:
    {OBSERVED_METRICS_KEY: {metric: SQL aggregate}, OBSERVED_KEYS_KEY: [key columns, ...]}."""
    tables: dict[tuple[str, ...], dict[str, Any]] = {}
    for c in checks:
        if not c.metrics:
            continue
        entry = tables.setdefault(c.key, {OBSERVED_METRICS_KEY: {}})
        entry[OBSERVED_METRICS_KEY].update(c.metrics)
        for columns in c.numbered_keys:
            keys = entry.setdefault(OBSERVED_KEYS_KEY, [])
            if list(columns) not in keys:
                keys.append(list(columns))
    return tables


def observed_by_writes(assets: Sequence, checks: Sequence[PartitionCheck]) -> list:
    """`assets` with the metrics of their aggregate and key checks in their definition metadata,
    where the Delta IO manager finds what to observe while it writes them."""
    observations = write_observations(checks)

    def with_metrics(spec: dg.AssetSpec) -> dg.AssetSpec:
        table = tuple(spec.key.path)
        return spec.merge_attributes(metadata=observations[table]) if table in observations else spec

    return list(dg.map_asset_specs(with_metrics, assets))


def checked_tables(assets: Sequence, checks: Sequence[PartitionCheck]) -> dg.Definitions:
    """A layer's definitions: its assets, told what their writes observe, and its table checks."""
    return dg.Definitions(assets=observed_by_writes(assets, checks), asset_checks=table_checks(checks))


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
        chosen = [c for c in group if c.check_key in context.selected_asset_check_keys]
        metrics = {name: sql for c in chosen for name, sql in c.metrics}
        trusted = metrics and context.run.tags.get(CHECKS_TAG) != FULL
        written = reader.written_aggregates(context, key, metrics) if trusted else None
        # The metrics of the checks the write's values do not serve whole, in one query (a check takes
        # all its metrics from one source; a key check queries its own way).
        missing = {name: sql for c in chosen if c.unobserved is None
                   and (written is None or any(n not in written.values for n, _ in c.metrics)) for name, sql in c.metrics}
        queried = query_aggregates(df, missing) if missing else None
        for c in chosen:
            yield c.evaluate(df, day, reader, (written, queried))

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
    """Blocking by default: the key columns are not null and unique within the partition. Observed
    by the write of a whole partition (`transforms.quality.key_metrics`), else one query."""
    name = key_check_name(columns)

    def result(verdict: KeyVerdict) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=verdict.passed,
            metadata={"rows": verdict.rows, "null_keys": verdict.null_keys, "duplicate_keys": verdict.duplicate_keys},
            description=verdict.description,
        )

    def queried(df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        return result(key_verdict(df, columns))

    def observed(values: Mapping[str, Any], df: DataFrame, day: dt.date, reader: TableReader) -> dg.AssetCheckResult:
        verdict = KeyVerdict(int(values["rows"]), int(values["null_keys"]), int(values["duplicate_keys"]), None)
        # A failed key is read again to name its offenders (the same rows: the table is at the observed commit).
        return result(verdict if verdict.passed else key_verdict(df, columns))

    metrics = tuple((f"{name}__{metric}", sql) for metric, sql in key_metrics(columns).items())
    return PartitionCheck(tuple(key), name, f"({', '.join(columns)}) is not null and unique in the partition.",
                          blocking, (), observed, metrics, (tuple(columns),), queried)  # type: ignore[arg-type]
