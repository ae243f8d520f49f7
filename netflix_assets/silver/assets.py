"""Silver assets: thin wiring around `transforms.silver`."""


import dagster as dg
from pyspark.sql import DataFrame

from ..io_managers.delta import delta_out
from ..partitions import daily_partitions
from ..transforms import silver as t
from .checks import checks


def _outs(table: str, description: str) -> dict[str, dg.AssetOut]:
    return {
        "silver": delta_out(["silver", table], description),
        "quarantine": delta_out(
            ["quarantine", table], f"Rows silver refused for {table}, raw, with `_reason` (duplicates included)."
        ),
    }


@dg.multi_asset(
    name="silver_netflix_titles",
    outs=_outs("netflix_titles", "Typed, trimmed titles; one row per show_id per partition (latest record wins)."),
    ins={"bronze": dg.AssetIn(["bronze", "netflix_titles"])},
    partitions_def=daily_partitions,
    group_name="silver",
    can_subset=True,
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
        ),
        ins={
            "bronze_lookup": dg.AssetIn(["bronze", lookup.table]),
            "bronze_titles": dg.AssetIn(["bronze", "netflix_titles"]),
        },
        partitions_def=daily_partitions,
        group_name="silver",
        can_subset=True,
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

defs = dg.Definitions(assets=[silver_netflix_titles, *silver_lookups], asset_checks=checks)
