"""Silver assets: thin wiring around `transforms.silver`."""


import dagster as dg
from pyspark.sql import DataFrame

from ..partitions import daily_partitions
from ..transforms import silver as t
from .checks import checks


def _outs(table: str, description: str) -> dict[str, dg.AssetOut]:
    return {
        "silver": dg.AssetOut(
            key=["silver", table], io_manager_key="delta_io_manager", description=description, kinds={"spark", "delta"}
        ),
        "quarantine": dg.AssetOut(
            key=["quarantine", table],
            io_manager_key="delta_io_manager",
            description=f"Rows silver refused for {table}, raw, with `_reason` (duplicates included).",
            kinds={"spark", "delta"},
        ),
    }


@dg.multi_asset(
    name="silver_netflix_titles",
    outs=_outs("netflix_titles", "Typed, trimmed titles; one row per show_id per partition (latest record wins)."),
    ins={"bronze": dg.AssetIn(["bronze", "netflix_titles"])},
    partitions_def=daily_partitions,
    group_name="silver",
)
def silver_netflix_titles(bronze: DataFrame):
    classified = t.classify_titles(bronze).persist()
    try:
        yield dg.Output(t.silver_titles(classified), "silver")
        yield dg.Output(t.refused(classified), "quarantine")
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
    )
    def _asset(bronze_lookup: DataFrame, bronze_titles: DataFrame):
        classified = t.classify_lookup(t.lookup_candidates(lookup, bronze_lookup, bronze_titles)).persist()
        try:
            yield dg.Output(t.silver_lookup(lookup, classified), "silver")
            yield dg.Output(t.quarantine_lookup(lookup, classified), "quarantine")
        finally:
            classified.unpersist()

    return _asset


silver_lookups = [_silver_lookup(lookup) for lookup in t.LOOKUPS.values()]

defs = dg.Definitions(assets=[silver_netflix_titles, *silver_lookups], asset_checks=checks)
