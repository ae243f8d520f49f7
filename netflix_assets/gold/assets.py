"""Gold parity assets (the original DLT tables), as snapshots as of the partition date."""


import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..automation import FOLLOW_UPSTREAM
from ..io_managers.delta import LOAD_AS_OF, LOAD_MODE, Replace, delta_out
from ..lib import refresh
from ..lib.checks import TableReader, checked_tables
from ..lib.lineage import LINEAGE_KEY, column_lineage, set_here
from ..lib.tables import partition_date
from ..partitions import daily_partitions
from ..transforms import gold as g
from ..transforms.formats import LOOKUPS
from ..transforms.silver import REASON, SILVER_TITLES_SCHEMA
from ..resources.databricks import SPARK_RESOURCES

SILVER_TITLES = ("silver", "netflix_titles")
SERVED, DROPPED = ("gold", "netflix_titles"), ("quarantine", "gold_netflix_titles")
from . import model, model_checks
from .checks import checks


def as_of(table: str) -> dg.AssetIn:
    """gold[D] reads every silver partition <= D (the snapshot rule), while the
    dependency stays partition-to-partition so lineage and automation follow D."""
    return dg.AssetIn(["silver", table], metadata={LOAD_MODE: LOAD_AS_OF})


_TITLES_LINEAGE = column_lineage(
    {"duration_ranking": [(SILVER_TITLES, "duration_minutes")], "newflag": [],
     "_version_date": [(SILVER_TITLES, "ingest_date")],
     g.FIRST_INGESTED: [(SILVER_TITLES, c) for c in g.ORDER]},
    SILVER_TITLES,
    [f.name for f in SILVER_TITLES_SCHEMA.fields],
)


@dg.multi_asset(
    name="gold_netflix_titles",
    outs={
        "gold": delta_out(
            ["gold", "netflix_titles"],
            "Titles snapshot as of D + duration_ranking + newflag (original DLT gold table).",
            _TITLES_LINEAGE,
            automation_condition=FOLLOW_UPSTREAM,
        ),
        "dropped": delta_out(
            ["quarantine", "gold_netflix_titles"],
            "Snapshot rows dropped by the gold expectations (show_id, newflag not null), with `_reason`.",
            set_here(_TITLES_LINEAGE, [], {REASON: [(SILVER_TITLES, "show_id")]}),  # newflag: a constant
        ),
    },
    ins={"silver": as_of("netflix_titles")},
    partitions_def=daily_partitions,
    group_name="gold",
    can_subset=True,
    required_resource_keys=SPARK_RESOURCES,
)
def gold_netflix_titles(context: dg.AssetExecutionContext, silver: DataFrame):
    day = partition_date(context)
    plan = _plan(context, SERVED, [DROPPED], silver, needs=g.FIRST_INGESTED)
    if plan is None:
        ranked = g.gold_titles(g.snapshot_as_of(silver, day, first=True)).persist()  # read by both outputs
        (served, dropped), persisted, meta = g.served_and_dropped(ranked), ranked, refresh.FULL_REFRESH
    else:
        reader = TableReader(context.resources.spark, context.resources.lake)
        stored = [reader.partition(key, day) for key in (SERVED, DROPPED)]
        done = g.refresh_gold_titles(silver, plan.keys, *stored, day)
        served, dropped, persisted = done.served, done.dropped, done.ranks
        if not done.reranked:  # only the touched show_ids' rows are new
            served, dropped = Replace(served, plan.key_predicate(), by="show_id"), Replace(dropped, plan.key_predicate(), by="show_id")
        meta = {**plan.metadata(), "refresh_reranked": done.reranked}
    try:
        for name, df in (("gold", served), ("dropped", dropped)):
            if name in context.op_execution_context.selected_output_names:
                yield dg.Output(df, name, metadata=meta)
    finally:
        persisted.unpersist()


def _plan(
    context: dg.AssetExecutionContext, served: tuple, others: list[tuple], silver: DataFrame, removals: bool = False,
    needs: str = "_source_file",
) -> "refresh.KeyedRefresh | None":
    """A keyed refresh of gold `served`[D] (and `others`, its quarantine) when the run asks for one:
    the silver rows of D that gold does not hold yet (by `_source_file`) name the touched show_ids."""
    if not refresh.incremental_requested(context):
        return None
    reader = TableReader(context.resources.spark, context.resources.lake)
    day = partition_date(context)
    current = refresh.day_rows(silver, day)
    outputs = [reader.partition_or_none(key, day) for key in (served, *others)]
    outputs = [o for o in outputs if o is not None and {"_source_file", needs} <= set(o.columns)]
    if len(outputs) < 1 + len(others):  # a table from before gold kept `_source_file` (or `needs`): rebuild
        return None
    if needs != "_source_file" and outputs[0].where(F.col(needs).isNull()).limit(1).count():
        return None  # a partition written before the table gained `needs` (null there since): rebuild
    outputs = [o.where(F.col("_version_date") == F.lit(day)) for o in outputs]
    def removed_from(files):
        # Rows gold holds of those files that silver[D] no longer does (a later record of the day
        # replaced the title's list): their show_ids are touched, though no new file names them.
        keyed = ["show_id", "_source_file"]
        held = outputs[0].where(F.col("_source_file").isin(files)).select(*keyed)
        return held.join(current.where(F.col("_source_file").isin(files)).select(*keyed), keyed, "left_anti")

    return refresh.plan(context, reader, served, [current], outputs,
                        lambda files: current.where(F.col("_source_file").isin(files)), F.col("show_id"),
                        removed_from if removals else None)


def _gold_lookup(table: str, value_column: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["gold", table],
        ins={"silver": as_of(table)},
        partitions_def=daily_partitions,
        io_manager_key="delta_io_manager",
        group_name="gold",
        kinds={"spark", "delta", "gold"},
        description=f"(show_id, {value_column}) snapshot as of D: each show's list from its latest pull.",
        metadata={
            LINEAGE_KEY: column_lineage(
                {"_version_date": [(("silver", table), "ingest_date")]}, ("silver", table), ["show_id", value_column, "_source_file", "ingest_date"]
            )
        },
        automation_condition=FOLLOW_UPSTREAM,
        required_resource_keys=SPARK_RESOURCES,
    )
    def _asset(context: dg.AssetExecutionContext, silver: DataFrame):
        day = partition_date(context)
        plan = _plan(context, ("gold", table), [], silver, removals=True)
        if plan is None:
            return dg.Output(g.gold_lookup(g.snapshot_as_of(silver, day), value_column), metadata=refresh.FULL_REFRESH)
        # A touched show_id's list is that of its latest silver partition up to D (the snapshot rule):
        # silver[D]'s, or an earlier day's when a later record of D left it none.
        touched = silver.where(F.col("show_id").isin(list(plan.keys)))
        fresh = g.gold_lookup(g.snapshot_as_of(touched, day), value_column)
        return dg.Output(Replace(fresh, plan.key_predicate(), by="show_id"), metadata=plan.metadata())

    return _asset


gold_lookups = [_gold_lookup(lookup.table, lookup.value_column) for lookup in LOOKUPS.values()]

defs = checked_tables([gold_netflix_titles, *gold_lookups, *model.model_assets, *model.kpi_assets],
                      [*checks, *model_checks.checks])
