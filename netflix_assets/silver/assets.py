"""Silver assets: thin wiring around `transforms.silver`."""


import dagster as dg
from pyspark.sql import DataFrame

from ..io_managers.delta import delta_out
from ..lib.checks import table_checks
from ..lib.lineage import column_lineage
from ..partitions import daily_partitions
from ..transforms import silver as t
from ..resources.databricks import SPARK_STEP
from .checks import checks


BRONZE_TITLES = ("bronze", "netflix_titles")
LINEAGE_COLUMNS = ["_source_format", "_source_file", "_source_line", "_ingested_at", "ingest_date"]


def _titles_lineage() -> dg.TableColumnLineage:
    def src(*columns: str):
        return [(BRONZE_TITLES, c) for c in columns]

    return column_lineage(
        {
            "short_title": src("title"),
            "rating": src("rating", "duration"),
            "rating_group": src("rating"),
            "duration_minutes": src("duration_minutes", "duration", "rating"),
            "duration_seasons": src("duration_seasons", "duration"),
            "type_flag": src("type"),
        },
        BRONZE_TITLES,
        ["show_id", "type", "title", "description", "date_added", "release_year", *LINEAGE_COLUMNS],
    )


def _lookup_lineage(lookup: t.Lookup) -> dg.TableColumnLineage:
    bronze = ("bronze", lookup.table)
    return column_lineage(
        {
            "show_id": [(bronze, "show_id"), (BRONZE_TITLES, "show_id")],
            lookup.value_column: [(bronze, lookup.source_column), (BRONZE_TITLES, lookup.kaggle_list_column)],
            **{c: [(bronze, c), (BRONZE_TITLES, c)] for c in LINEAGE_COLUMNS},
        }
    )


def _outs(table: str, description: str, lineage: dg.TableColumnLineage) -> dict[str, dg.AssetOut]:
    return {
        "silver": delta_out(["silver", table], description, lineage, automation_condition=dg.AutomationCondition.eager()),
        "quarantine": delta_out(
            ["quarantine", table], f"Rows silver refused for {table}, raw, with `_reason` (duplicates included)."
        ),
    }


@dg.multi_asset(
    name="silver_netflix_titles",
    outs=_outs(
        "netflix_titles", "Typed, trimmed titles; one row per show_id per partition (latest record wins).", _titles_lineage()
    ),
    ins={"bronze": dg.AssetIn(["bronze", "netflix_titles"])},
    partitions_def=daily_partitions,
    group_name="silver",
    can_subset=True,
    required_resource_keys=SPARK_STEP,
)
def silver_netflix_titles(context: dg.AssetExecutionContext, bronze: DataFrame):
    yield from _split_outputs(context, t.classify_titles(bronze), t.silver_titles, t.refused)


def _split_outputs(context: dg.AssetExecutionContext, classified: DataFrame, to_silver, to_quarantine):
    """Yield the selected outputs; the classification is computed once for both."""
    selected = context.op_execution_context.selected_output_names
    classified = classified.persist()
    try:
        if "silver" in selected:
            yield dg.Output(to_silver(classified), "silver")
        if "quarantine" in selected:
            yield dg.Output(to_quarantine(classified), "quarantine")
    finally:
        classified.unpersist()


def _silver_lookup(lookup: t.Lookup) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=f"silver_{lookup.table}",
        outs=_outs(
            lookup.table,
            f"Distinct (show_id, {lookup.value_column}) pairs of the day: the pulled file plus the Kaggle titles' lists.",
            _lookup_lineage(lookup),
        ),
        ins={
            "bronze_lookup": dg.AssetIn(["bronze", lookup.table]),
            "bronze_titles": dg.AssetIn(["bronze", "netflix_titles"]),
        },
        partitions_def=daily_partitions,
        group_name="silver",
        can_subset=True,
        required_resource_keys=SPARK_STEP,
    )
    def _asset(context: dg.AssetExecutionContext, bronze_lookup: DataFrame, bronze_titles: DataFrame):
        yield from _split_outputs(
            context,
            t.classify_lookup(t.lookup_candidates(lookup, bronze_lookup, bronze_titles)),
            lambda df: t.silver_lookup(lookup, df),
            lambda df: t.quarantine_lookup(lookup, df),
        )

    return _asset


silver_lookups = [_silver_lookup(lookup) for lookup in t.LOOKUPS.values()]

defs = dg.Definitions(assets=[silver_netflix_titles, *silver_lookups], asset_checks=table_checks(checks))
