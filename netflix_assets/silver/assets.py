"""Silver assets: thin wiring around `transforms.silver`."""


import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..automation import FOLLOW_UPSTREAM
from ..io_managers.delta import Replace, delta_out
from ..lib import refresh
from ..lib.checks import TableReader, checked_tables
from ..lib.lineage import column_lineage, same_columns, set_here
from ..lib.tables import partition_date
from ..partitions import daily_partitions
from ..transforms.bronze import SET_ON_READ
from ..transforms.formats import LOOKUPS, TITLE_COLUMNS, Lookup
from ..transforms import silver as t
from ..resources.databricks import SPARK_RESOURCES
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


def _lookup_lineage(lookup: Lookup) -> dg.TableColumnLineage:
    bronze = ("bronze", lookup.table)
    return column_lineage(
        {
            "show_id": [(bronze, "show_id"), (BRONZE_TITLES, "show_id")],
            lookup.value_column: [(bronze, lookup.source_column), (BRONZE_TITLES, lookup.kaggle_list_column)],
            **{c: [(bronze, c), (BRONZE_TITLES, c)] for c in LINEAGE_COLUMNS},
        }
    )


def _outs(table: str, description: str, lineage: dg.TableColumnLineage,
          refused: dg.TableColumnLineage) -> dict[str, dg.AssetOut]:
    """`refused`: the quarantine's lineage, `_reason` included (the columns its rules read)."""
    return {
        "silver": delta_out(["silver", table], description, lineage, automation_condition=FOLLOW_UPSTREAM),
        "quarantine": delta_out(
            ["quarantine", table], f"Rows silver refused for {table}, raw, with `_reason` (duplicates included).", refused,
        ),
    }


def raw_key():
    """show_id as silver keys it (trimmed; blank = none), on raw bronze-shaped rows."""
    return F.trim(F.col("show_id"))


@dg.multi_asset(
    name="silver_netflix_titles",
    outs=_outs(
        "netflix_titles", "Typed, trimmed titles; one row per show_id per partition (latest record wins).", _titles_lineage(),
        # A refused record as bronze holds it; `_reason` from the rules' columns and the ingest order.
        set_here(same_columns(BRONZE_TITLES, [*TITLE_COLUMNS, *SET_ON_READ]), [],
                 {t.REASON: [(BRONZE_TITLES, c) for c in ("_rescued_data", "show_id", "type", *t.LATEST_FIRST)]}),
    ),
    ins={"bronze": dg.AssetIn(["bronze", "netflix_titles"])},
    partitions_def=daily_partitions,
    group_name="silver",
    can_subset=True,
    required_resource_keys=SPARK_RESOURCES,
)
def silver_netflix_titles(context: dg.AssetExecutionContext, bronze: DataFrame):
    plan = _plan(context, "netflix_titles", [bronze], lambda files: bronze.where(F.col("_source_file").isin(files)))
    if plan is not None:
        bronze = bronze.where(plan.source_rows(raw_key()))
    yield from _split_outputs(context, t.classify_titles(bronze), t.silver_titles, t.refused, plan)


def _plan(context: dg.AssetExecutionContext, table: str, inputs: list[DataFrame], rows_of_files) -> "refresh.KeyedRefresh | None":
    """A keyed refresh of silver/<table>[D] and its quarantine when the run asks for one (see `lib.refresh`)."""
    if not refresh.incremental_requested(context):
        return None
    reader = TableReader(context.resources.spark, context.resources.lake)
    day = partition_date(context)
    outputs = [reader.partition_or_none((layer, table), day) for layer in ("silver", "quarantine")]
    return refresh.plan(context, reader, ("silver", table), inputs, outputs, rows_of_files, raw_key())


def _split_outputs(context: dg.AssetExecutionContext, classified: DataFrame, to_silver, to_quarantine,
                   plan: "refresh.KeyedRefresh | None" = None):
    """Yield the selected outputs; the classification is computed once for both. With a keyed
    refresh, each output replaces only the rows of the touched keys and new files."""
    selected = context.op_execution_context.selected_output_names
    meta = refresh.FULL_REFRESH if plan is None else plan.metadata()
    classified = classified.persist()
    try:
        if "silver" in selected:
            df = to_silver(classified)
            yield dg.Output(df if plan is None else Replace(df, plan.key_predicate(), by="show_id"), "silver", metadata=meta)
        if "quarantine" in selected:
            df = to_quarantine(classified)
            yield dg.Output(df if plan is None else Replace(df, plan.source_predicate()), "quarantine", metadata=meta)
    finally:
        classified.unpersist()


def _silver_lookup(lookup: Lookup) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=f"silver_{lookup.table}",
        outs=_outs(
            lookup.table,
            f"Distinct (show_id, {lookup.value_column}) pairs of the day: the pulled file plus the Kaggle titles' lists.",
            _lookup_lineage(lookup),
            # A refused pair as silver read it, with its evidence (a Kaggle list is read from valid records
            # only: no `_rescued_data` of theirs); `_reason` from the rules' columns, its title's verdict included.
            set_here(_lookup_lineage(lookup), [], {
                "_rescued_data": [(("bronze", lookup.table), "_rescued_data")],
                t.REASON: [*((("bronze", lookup.table), c) for c in ("_rescued_data", "show_id", lookup.source_column,
                                                                      *t.LATEST_FIRST)),
                           *((BRONZE_TITLES, c) for c in ("_rescued_data", "show_id", "type", lookup.kaggle_list_column,
                                                          *t.LATEST_FIRST))],
            }),
        ),
        ins={
            "bronze_lookup": dg.AssetIn(["bronze", lookup.table]),
            "bronze_titles": dg.AssetIn(["bronze", "netflix_titles"]),
        },
        partitions_def=daily_partitions,
        group_name="silver",
        can_subset=True,
        required_resource_keys=SPARK_RESOURCES,
    )
    def _asset(context: dg.AssetExecutionContext, bronze_lookup: DataFrame, bronze_titles: DataFrame):
        candidates = t.lookup_candidates(lookup, bronze_lookup, bronze_titles)

        def keys_of_files(files):
            # Every record of a new file touches its title, listed or not: a record with a blank list
            # (or a tutorial one) replaces an earlier record of the day, whose list values leave silver.
            return bronze_titles.where(F.col("_source_file").isin(files)).select("show_id").unionByName(
                bronze_lookup.where(F.col("_source_file").isin(files)).select("show_id"))

        # Rows per file are counted before the explode: cheap on a big partition.
        plan = _plan(
            context, lookup.table,
            [t.lookup_candidate_counts(lookup, bronze_lookup, bronze_titles), t.kaggle_files_without_list(lookup, bronze_titles)],
            keys_of_files,
        )
        if plan is not None:
            candidates = candidates.where(plan.source_rows(raw_key()))
        yield from _split_outputs(
            context,
            t.classify_lookup(candidates),
            lambda df: t.silver_lookup(lookup, df),
            lambda df: t.quarantine_lookup(lookup, df),
            plan,
        )

    return _asset


silver_lookups = [_silver_lookup(lookup) for lookup in LOOKUPS.values()]

defs = checked_tables([silver_netflix_titles, *silver_lookups], checks)
