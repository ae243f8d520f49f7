"""Gold parity assets (the original DLT tables), as snapshots as of the partition date."""


import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..io_managers.delta import LOAD_AS_OF, LOAD_MODE, delta_out
from ..lib.checks import table_checks
from ..lib.lineage import LINEAGE_KEY, column_lineage
from ..lib.tables import partition_date
from ..partitions import daily_partitions
from ..transforms import gold as g
from ..transforms.silver import LOOKUPS, SILVER_TITLES_SCHEMA
from ..resources.databricks import SPARK_STEP

SILVER_TITLES = ("silver", "netflix_titles")
from . import model, model_checks
from .checks import checks


def as_of(table: str) -> dg.AssetIn:
    """gold[D] reads every silver partition <= D (the snapshot rule), while the
    dependency stays partition-to-partition so lineage and automation follow D."""
    return dg.AssetIn(["silver", table], metadata={LOAD_MODE: LOAD_AS_OF})


@dg.multi_asset(
    name="gold_netflix_titles",
    outs={
        "gold": delta_out(
            ["gold", "netflix_titles"],
            "Titles snapshot as of D + duration_ranking + newflag (original DLT gold table).",
            column_lineage(
                {"duration_ranking": [(SILVER_TITLES, "duration_minutes")], "newflag": [],
                 "_version_date": [(SILVER_TITLES, "ingest_date")]},
                SILVER_TITLES,
                [f.name for f in SILVER_TITLES_SCHEMA.fields],
            ),
            automation_condition=dg.AutomationCondition.eager(),
        ),
        "dropped": delta_out(
            ["quarantine", "gold_netflix_titles"],
            "Snapshot rows dropped by the gold expectations (show_id, newflag not null), with `_reason`.",
        ),
    },
    ins={"silver": as_of("netflix_titles")},
    partitions_def=daily_partitions,
    group_name="gold",
    can_subset=True,
    required_resource_keys=SPARK_STEP,
)
def gold_netflix_titles(context: dg.AssetExecutionContext, silver: DataFrame):
    selected = context.op_execution_context.selected_output_names
    ranked = g.gold_titles(g.snapshot_as_of(silver, partition_date(context))).persist()
    try:
        if "gold" in selected:
            yield dg.Output(ranked.where(F.col("_reason").isNull()).drop("_reason"), "gold")
        if "dropped" in selected:
            yield dg.Output(ranked.where(F.col("_reason").isNotNull()), "dropped")
    finally:
        ranked.unpersist()


def _gold_lookup(table: str, value_column: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=["gold", table],
        ins={"silver": as_of(table)},
        partitions_def=daily_partitions,
        io_manager_key="delta_io_manager",
        group_name="gold",
        kinds={"spark", "delta"},
        description=f"(show_id, {value_column}) snapshot as of D: each show's list from its latest pull.",
        metadata={
            LINEAGE_KEY: column_lineage(
                {"_version_date": [(("silver", table), "ingest_date")]}, ("silver", table), ["show_id", value_column, "ingest_date"]
            )
        },
        automation_condition=dg.AutomationCondition.eager(),
        required_resource_keys=SPARK_STEP,
    )
    def _asset(context: dg.AssetExecutionContext, silver: DataFrame) -> DataFrame:
        return g.gold_lookup(g.snapshot_as_of(silver, partition_date(context)), value_column)

    return _asset


gold_lookups = [_gold_lookup(lookup.table, lookup.value_column) for lookup in LOOKUPS.values()]

defs = dg.Definitions(
    assets=[gold_netflix_titles, *gold_lookups, *model.model_assets, *model.kpi_assets],
    asset_checks=table_checks([*checks, *model_checks.checks]),
)
