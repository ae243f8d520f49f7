"""Spark DataFrames <-> Delta tables at `<lake>/<layer>/<table>`, one partition at a time."""


import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import dagster as dg

from ..resources.lake import LakeResource
from ..resources.spark import SparkResource
from ..lib import lineage as declared
from ..lib.lineage import LINEAGE_KEY
from ..reporting import lineage as lineage_picture
from ..lib.columns import describe
from ..lib.delta import (
    PARTITION_COLUMN, comment_columns, commit_metadata, observe, partition_row_counts, read_table, save_table,
    with_comments, write_partitions,
)
from ..lib.checks import (
    OBSERVED_KEYS_KEY, OBSERVED_METRICS_KEY, OBSERVED_VALUES_KEY, latest_materialization_metadata, metric_definitions,
    observed_values, trusted_values,
)
from ..transforms.quality import OUTSIDE_REPLACED, outside_metric, replaced_partition_metrics
from ..lib.tables import table_metadata

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# AssetIn metadata key: how a downstream asset wants an upstream table read.
LOAD_MODE = "load"
LOAD_PARTITION = "partition"  # exactly the mapped partition(s) (default)
LOAD_AS_OF = "as_of"  # every partition up to the end of the mapped window (gold snapshots)
# Asset metadata key: the asset reads its own partitions of earlier days (an incremental history
# advancing from the day before), as an input read as of its day (`later_days`).
READS_OWN_EARLIER_DAYS = "netflix/reads_own_earlier_days"
# Materialization metadata key: the predicate of a `Replace` that asked to be shown.
SHOWN_PREDICATE_KEY = "replace_where"


@dataclass(frozen=True)
class Replace:
    """An output that replaces only the rows of its partition matching `where` (a SQL predicate),
    not the whole partition: a bronze batch of files, a keyed refresh (`lib.refresh`). The one way
    an asset narrows its write. `shown`: the predicate is also recorded with the materialization
    (a bronze batch's short file list, which the UI then shows; a keyed refresh's predicate lists
    up to 20,000 show_ids, too long for the event log). `by`: the column `where` selects rows by,
    when every row of its values is replaced (a keyed refresh's show_id): the keys holding it then
    never share a key between kept and written rows, and the write's key checks can be derived."""

    df: "DataFrame"
    where: str
    shown: bool = False
    by: Optional[str] = None


def delta_out(key: list[str], description: str, lineage: Optional[dg.TableColumnLineage] = None, **kwargs) -> dg.AssetOut:
    """An optional (subsettable) output of a multi-asset, stored as a Delta table,
    with its column lineage declared (and repeated on every materialization). Its layer
    (the key's first part) is a kind too: the graph's nodes show only the table's name, and
    Dagster draws the medallion kinds `bronze`, `silver` and `gold` as icons on them."""
    return dg.AssetOut(
        key=key,
        io_manager_key="delta_io_manager",
        description=description,
        kinds={"spark", "delta", key[0]},
        is_required=False,
        metadata={LINEAGE_KEY: lineage} if lineage is not None else None,
        **kwargs,
    )


def _window(context: "dg.InputContext | dg.OutputContext") -> Optional[tuple[dt.date, dt.date]]:
    """[start, end) of the partition window, or None for an unpartitioned asset."""
    if not context.has_asset_partitions:
        return None
    window = context.asset_partitions_time_window
    return window.start.date(), window.end.date()


def _previous_metadata(context: dg.OutputContext) -> Optional[dict]:
    """The metadata of the partition's materialization before this write (this one is recorded
    after `handle_output`), when the step's instance knows it (a remote step's may not)."""
    try:
        instance = context.step_context.instance
        return latest_materialization_metadata(instance, context.asset_key, context.asset_partition_key)
    except Exception:  # noqa: BLE001 - no history: nothing is derived, the checks query
        return None


class SparkDeltaIOManager(dg.ConfigurableIOManager):
    """Writes each partition with `replaceWhere` on `ingest_date`, so a re-run
    replaces exactly the partitions it materializes and never appends twice.

    Row counts come from the Delta commit's `operationMetrics`, not a count().
    """

    lake: dg.ResourceDependency[LakeResource]
    spark: dg.ResourceDependency[SparkResource]

    def _uri(self, key: dg.AssetKey) -> str:
        if len(key.path) != 2:
            raise ValueError(f"asset key {key.to_user_string()} is not [layer, table]")
        layer, table = key.path
        return self.lake.table_uri(layer, table)

    def handle_output(self, context: dg.OutputContext, obj: "DataFrame | Replace") -> None:
        uri = self._uri(context.asset_key)
        window = _window(context)
        narrower = shown = by = None
        if isinstance(obj, Replace):
            obj, narrower, shown, by = obj.df, obj.where, obj.shown, obj.by
        if narrower is not None and window is None:
            raise ValueError(f"{context.asset_key.to_user_string()}: a Replace needs a partitioned asset")
        descriptions = describe(context.asset_key.to_user_string(), obj.columns)
        obj = with_comments(obj, descriptions)
        observed = None
        metrics = (context.definition_metadata or {}).get(OBSERVED_METRICS_KEY)
        keys = (context.definition_metadata or {}).get(OBSERVED_KEYS_KEY) or ()
        if metrics and window is not None and window[1] - window[0] == dt.timedelta(days=1) and (narrower is None or by):
            # A write of the whole partition observes the partition's content (lib/checks.py: the
            # table's aggregate and key checks then need no query of their own); a keyed refresh
            # observes its own rows, from which some of the partition's values follow.
            wanted = metrics if narrower is None else {**metrics, OUTSIDE_REPLACED: outside_metric(narrower)}
            obj, observed = observe(obj, wanted, keys)
        retried: list[bool] = []
        if window is not None:
            marker = write_partitions(obj, uri, *window, narrower=narrower, on_retry=lambda: retried.append(True))
        else:
            marker = save_table(obj, uri)
        spark = self.spark.get_session()
        try:
            comment_columns(spark, uri, descriptions, self.lake.storage_options() or None)
        except Exception as err:  # noqa: BLE001: comments are documentation, never worth a failed run
            context.log.warning(f"{uri}: column comments not updated ({type(err).__name__}: {err}); the next write retries")
        # This run's own commit (another run may have committed to the table since).
        metadata = {
            **commit_metadata(spark, uri, self.lake.storage_options(), marker),
            **table_metadata(context.asset_key, obj.schema, uri),
        }
        # A retried write ran its rows again, after another writer's commit: Spark completes an
        # observation once, on the first attempt, so its values may not describe the rows committed.
        values = observed() if observed is not None and not retried else None
        partition_rows = None
        if narrower is not None and window is not None:
            # The commit wrote part of the partition: the partition's size comes from the log.
            if shown:
                metadata[SHOWN_PREDICATE_KEY] = narrower
            metadata["rows_written"] = metadata["dagster/row_count"]
            rows = partition_row_counts(uri, self.lake.storage_options())
            if rows is not None:
                partition_rows = metadata["dagster/row_count"] = sum(n for d, n in rows.items() if window[0] <= d < window[1])
        version = metadata.get("delta_version")
        if values is not None and version is not None and narrower is not None:
            previous = observed_values(_previous_metadata(context))
            values = replaced_partition_metrics(
                metrics, (trusted_values(previous, metrics) or None) if (previous or {}).get("delta_version") == version - 1 else None,
                values, partition_rows, [k for k in keys if by is not None and by in k],
            )
        if values and version is not None:
            definitions = metric_definitions({name: sql for name, sql in metrics.items() if name in values})
            metadata[OBSERVED_VALUES_KEY] = dg.MetadataValue.json(
                {"delta_version": version, "metrics": values, "definitions": definitions}
            )
        lineage = (context.definition_metadata or {}).get(LINEAGE_KEY)
        if lineage is not None:
            # The UI draws column lineage from the materialization's metadata (in Dagster+ only:
            # the open-source UI shows the entry raw, so gold tables carry a picture of it too).
            metadata[LINEAGE_KEY] = lineage
            graph = declared.graph()
            if graph and context.asset_key.path[0] == "gold":
                metadata["column_lineage_picture"] = dg.MetadataValue.md(
                    lineage_picture.markdown(graph, context.asset_key.to_user_string())
                )
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> "DataFrame":
        from pyspark.sql import functions as F

        key = context.asset_key
        uri = self._uri(key)
        df = read_table(self.spark.get_session(), uri)
        if df is None:
            raise dg.Failure(
                f"{key.to_user_string()} has no Delta table at {uri}: materialize it first",
                metadata={"uri": uri},
            )
        window = _window(context)
        if window is None:
            return df
        start, end = window
        mode = (context.definition_metadata or {}).get(LOAD_MODE, LOAD_PARTITION)
        upper = F.col(PARTITION_COLUMN) < F.lit(end)
        if mode == LOAD_AS_OF:
            return df.where(upper)
        return df.where((F.col(PARTITION_COLUMN) >= F.lit(start)) & upper)
