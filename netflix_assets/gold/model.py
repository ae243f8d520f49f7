"""Gold dimensional model and KPIs (the BI layer the original project promised):
thin wiring around `transforms.dimensional` and `transforms.kpis`.

Every table is a partitioned snapshot as of D, built from the gold snapshots of
the same partition; dim_title_history is made of the dim_title snapshots up to D:
rebuilt from all of them, or, in a run tagged `netflix/refresh=incremental` (the
landing-zone sensor's), advanced with D's snapshot alone from a stored partition
written after every snapshot it was made of (transforms/history.py: which one, and
why that is exact). Gold follows silver on its own (Declarative Automation:
`eager`), and the KPIs carry a freshness policy: a dashboard should never show
a catalog more than a day old without the UI saying so.
"""

import datetime as dt
from functools import reduce
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Sequence

import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..automation import FOLLOW_UPSTREAM
from ..lib.lineage import LINEAGE_KEY, Source, column_lineage, set_here
from ..partitions import daily_partitions
from ..reporting.charts import TOP_N, chart_markdown
from ..io_managers.delta import LOAD_AS_OF, LOAD_MODE, READS_OWN_EARLIER_DAYS, delta_out
from ..lib.checks import TableReader
from ..lib.delta import PARTITION_COLUMN, read_table
from ..lib.refresh import FULL_REFRESH, day_rows, incremental_requested
from ..lib.tables import partition_date
from ..transforms import dimensional as d
from ..transforms import history as h
from ..transforms import identity as ident
from ..transforms import kpis as k
from ..resources.databricks import SPARK_RESOURCES

if TYPE_CHECKING:
    import pandas as pd

TITLES = ("gold", "netflix_titles")
CAST = ("gold", "netflix_cast")
DIRECTORS = ("gold", "netflix_directors")
COUNTRIES = ("gold", "netflix_countries")
CATEGORY = ("gold", "netflix_category")
FACT = ("gold", "fact_title_added")
IDS = ("gold", "title_source_ids")
DIM_TITLE = ("gold", "dim_title")
HISTORY = ("gold", "dim_title_history")
REVIEW = ("gold", "title_match_review")

AUTOMATION = FOLLOW_UPSTREAM
KPI_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=26), warn_window=dt.timedelta(hours=24))


def gold_table(
    name: str,
    ins: Mapping[str, "Sequence[str] | dg.AssetIn"],
    description: str,
    lineage: dg.TableColumnLineage,
    freshness_policy: Optional[dg.FreshnessPolicy] = None,
    metadata: Optional[Mapping[str, str]] = None,
) -> Callable:
    """A partitioned gold Delta table whose function takes its inputs' partitions as DataFrames
    (an `AssetIn` in `ins` says how to read one otherwise, e.g. every snapshot up to D)."""
    return dg.asset(
        key=["gold", name],
        ins={arg: key if isinstance(key, dg.AssetIn) else dg.AssetIn(list(key)) for arg, key in ins.items()},
        partitions_def=daily_partitions,
        io_manager_key="delta_io_manager",
        group_name="gold",
        kinds={"spark", "delta", "gold"},
        description=description,
        # The day of every input is the table's: gold tables of D are built from tables of D (or up to D).
        metadata={LINEAGE_KEY: set_here(lineage, [], {PARTITION_COLUMN: [(_key(i), PARTITION_COLUMN) for i in ins.values()]}),
                  **(metadata or {})},
        automation_condition=AUTOMATION,
        freshness_policy=freshness_policy,
        required_resource_keys=SPARK_RESOURCES,
    )


def _key(table: "Sequence[str] | dg.AssetIn") -> tuple[str, ...]:
    return tuple(table.key.path) if isinstance(table, dg.AssetIn) else tuple(table)


def _from(*sources: tuple[Sequence[str], str]) -> list[Source]:
    return list(sources)


# ------------------------------------------------------------------ title identity

# A match decision reads the titles' evidence and their credits; which show_id keys a title, each
# show_id's first record; which describes it, the ingest order.
_EVIDENCE = _from((TITLES, "show_id"), (TITLES, "_source_format"), (TITLES, "type"), (TITLES, "title"),
                  (TITLES, "release_year"), (TITLES, "description"), (CAST, "show_id"), (CAST, "cast_name"),
                  (DIRECTORS, "show_id"), (DIRECTORS, "director_name"))
_ORDER = _from(*[(TITLES, c) for c in ident.ORDER])
_FIRST = _from((TITLES, ident.FIRST_INGESTED))


@dg.multi_asset(
    name="gold_title_identity",
    outs={
        "ids": delta_out(list(IDS), "One row per show_id: the conformed title_key of the real title it names, "
                         "and the evidence of its cross-source match (transforms/identity.py).",
                         column_lineage({"title_key": _EVIDENCE + _FIRST, "is_representative": _EVIDENCE + _ORDER,
                                         "match_rule": _EVIDENCE, "match_score": _EVIDENCE,
                                         "matched_show_id": _EVIDENCE, "source_format": _from((TITLES, "_source_format"))},
                                        TITLES, ["show_id", "type", "ingest_date"]),
                         automation_condition=AUTOMATION),
        "review": delta_out(list(REVIEW), "Cross-source candidate pairs left unmerged for a person to decide: "
                            "several candidates, or the same title and year without other evidence.",
                            set_here(column_lineage({c: _EVIDENCE for c in ident.REVIEW_COLUMNS}), [],
                                     {PARTITION_COLUMN: _from((TITLES, PARTITION_COLUMN))}),
                            automation_condition=AUTOMATION),
    },
    ins={"titles": dg.AssetIn(list(TITLES)), "cast": dg.AssetIn(list(CAST)), "directors": dg.AssetIn(list(DIRECTORS))},
    partitions_def=daily_partitions,
    group_name="gold",
    can_subset=True,
    required_resource_keys=SPARK_RESOURCES,
)
def gold_title_identity(context: dg.AssetExecutionContext, titles: DataFrame, cast: DataFrame, directors: DataFrame):
    # Persisted: both outputs read the scored pairs (one self-join of the catalogue).
    pairs = ident.scored_pairs(titles, cast, directors).persist()
    outputs = {"ids": lambda: ident.source_ids(titles, pairs), "review": lambda: ident.review(pairs)}
    try:
        for name in context.op_execution_context.selected_output_names:
            yield dg.Output(outputs[name](), name)
    finally:
        pairs.unpersist()


# ------------------------------------------------------------------ dimensions


@gold_table("dim_title", {"titles": TITLES, "ids": IDS},
            "One row per title_key (a real title, whichever sources named it): its representative's attributes.",
            column_lineage({"title_key": _from((IDS, "title_key"))}, TITLES,
                           [c for c in d.DIM_TITLE_COLUMNS if c != "title_key"]))
def dim_title(titles: DataFrame, ids: DataFrame) -> DataFrame:
    return d.dim_title(titles, ids)


_PERSON_NAME = _from((CAST, "cast_name"), (DIRECTORS, "director_name"))


@gold_table("dim_person", {"cast": CAST, "directors": DIRECTORS},
            "Every cast member and director once; person_key = xxhash64(name), stable across partitions and runs.",
            column_lineage({"person_key": _PERSON_NAME, "name": _PERSON_NAME}))
def dim_person(cast: DataFrame, directors: DataFrame) -> DataFrame:
    return d.dim_person(cast, directors)


@gold_table("dim_country", {"countries": COUNTRIES}, "Every country once; country_key = xxhash64(country).",
            column_lineage({"country_key": _from((COUNTRIES, "country")), "country": _from((COUNTRIES, "country"))}))
def dim_country(countries: DataFrame) -> DataFrame:
    return d.dim_value(countries, "country", "country")


@gold_table("dim_genre", {"category": CATEGORY}, "Every genre (listed_in category) once; genre_key = xxhash64(genre).",
            column_lineage({"genre_key": _from((CATEGORY, "category")), "genre": _from((CATEGORY, "category"))}))
def dim_genre(category: DataFrame) -> DataFrame:
    return d.dim_value(category, "category", "genre")


_DATE_COLUMNS = ["date", "year", "quarter", "month", "month_name", "year_month", "day", "day_name", "is_weekend"]


@gold_table("dim_date", {"titles": TITLES}, "Calendar: one row per day over the date_added range of the snapshot.",
            column_lineage({c: _from((TITLES, "date_added")) for c in _DATE_COLUMNS}))
def dim_date(titles: DataFrame) -> DataFrame:
    return d.dim_date(titles)


def _snapshots(key: Sequence[str]) -> dg.AssetIn:
    """Every partition of `key` up to D: the days a history is made of."""
    return dg.AssetIn(list(key), metadata={LOAD_MODE: LOAD_AS_OF})


_TRACKED_FROM_DIM = [c for c in h.TRACKED if c not in h.LISTS]
_VERSIONED = _from(*[(DIM_TITLE, c) for c in ("title_key", *_TRACKED_FROM_DIM, PARTITION_COLUMN)],
                   *[(key, c) for key, c in ((COUNTRIES, "country"), (CATEGORY, "category"))],
                   *[(key, PARTITION_COLUMN) for key in (COUNTRIES, CATEGORY)])


@gold_table("dim_title_history", {"dim_title": _snapshots(DIM_TITLE), "countries": _snapshots(COUNTRIES),
                                  "genres": _snapshots(CATEGORY)},
            "Every version of every title (SCD type 2): valid_from, valid_to, is_current, from the daily dim_title "
            "snapshots up to D (transforms/history.py: the sequencing rule); its current rows are dim_title.",
            column_lineage({"countries": _from((COUNTRIES, "country")), "genres": _from((CATEGORY, "category")),
                            # A version's bounds are where the tracked values change (between snapshot days).
                            **{c: _VERSIONED for c in ("valid_from", "valid_to", "is_current")}},
                           DIM_TITLE, ["title_key", *_TRACKED_FROM_DIM]),
            metadata={READS_OWN_EARLIER_DAYS: "a keyed run advances the history of the snapshot day before D"})
def dim_title_history(context: dg.AssetExecutionContext, dim_title: DataFrame, countries: DataFrame,
                      genres: DataFrame) -> dg.Output:
    day = partition_date(context)
    previous = _stored_history(context, day) if incremental_requested(context) else None
    if previous is None:
        return dg.Output(h.title_history(h.title_versions(dim_title, countries, genres), day), metadata=FULL_REFRESH)
    snapshot = h.title_versions(*(day_rows(df, day) for df in (dim_title, countries, genres)))
    history, source = previous
    return dg.Output(h.advance(history, snapshot, day), metadata={"refresh": "incremental", "refresh_from": source})


def _stored_history(context: dg.AssetExecutionContext, day: dt.date) -> Optional[tuple[DataFrame, str]]:
    """The history as of the snapshot day before `day` from the table's own partitions (None: rebuild)."""
    reader = TableReader(context.resources.spark, context.resources.lake)
    own = read_table(reader.session, reader.lake.table_uri(*HISTORY))
    # One Delta log read per table gives both the partitions' rows and their write times.
    files = [reader.partition_files(key) for key in (HISTORY, DIM_TITLE, COUNTRIES, CATEGORY)]
    previous = None
    if own is not None and None not in files:
        history, dims, *lists = files
        stored = {d: f.oldest for d, f in history.items() if f.rows and d <= day}
        snapshots = {d: max([f.newest, *(lookup[d].newest for lookup in lists if d in lookup)])
                     for d, f in dims.items() if f.rows and d <= day}
        previous = h.previous_history(own, stored, snapshots, day)
    if previous is None:
        context.log.info(f"dim_title_history[{day}]: no up-to-date stored history of the previous snapshot day: "
                         "rebuilding from every snapshot")
    return previous


# ------------------------------------------------------------------ bridges and fact


_TITLE_KEY = _from((IDS, "title_key"))


@gold_table("bridge_title_person", {"cast": CAST, "directors": DIRECTORS, "ids": IDS},
            "(show_id, title_key, person_key, role) of representative titles: role is 'cast' or 'director'.",
            column_lineage({"show_id": _from((CAST, "show_id"), (DIRECTORS, "show_id")), "title_key": _TITLE_KEY,
                            "person_key": _PERSON_NAME, "role": []}))
def bridge_title_person(cast: DataFrame, directors: DataFrame, ids: DataFrame) -> DataFrame:
    return d.bridge_title_person(cast, directors, ids)


def _value_bridge(dimension: str, lookup: Sequence[str], value_column: str) -> dg.AssetsDefinition:
    """bridge_title_<country|genre>: (show_id, title_key, <dimension>_key) of representative titles."""
    @gold_table(f"bridge_title_{dimension}", {"lookup": lookup, "ids": IDS},
                f"(show_id, title_key, {dimension}_key) of representative titles.",
                column_lineage({"show_id": _from((lookup, "show_id")), "title_key": _TITLE_KEY,
                                f"{dimension}_key": _from((lookup, value_column))}))
    def _asset(lookup: DataFrame, ids: DataFrame) -> DataFrame:
        return d.bridge_title_value(lookup, value_column, dimension, ids)

    return _asset


bridge_title_country = _value_bridge("country", COUNTRIES, "country")
bridge_title_genre = _value_bridge("genre", CATEGORY, "category")


@gold_table("fact_title_added", {"titles": TITLES, "ids": IDS},
            "One row per title (title_key) in the catalog: when it was added and its measures.",
            column_lineage({"years_to_netflix": _from((TITLES, "date_added"), (TITLES, "release_year")),
                            "title_key": _TITLE_KEY},
                           TITLES, [c for c in d.FACT_COLUMNS if c not in ("years_to_netflix", "title_key")]))
def fact_title_added(titles: DataFrame, ids: DataFrame) -> DataFrame:
    return d.fact_title_added(titles, ids)


# ------------------------------------------------------------------ KPIs


# Ranked KPIs grow with the catalog (kpi_top_people names every person: 1.6M rows at 1M
# titles) and their charts draw the TOP_N of each ranking (ties broken by name): only those
# rows leave Spark. KPI -> (name column, the column ranked within, its values).
_RANKED: dict[str, tuple[str, Optional[str], Sequence[str]]] = {
    "kpi_top_countries": ("country", None, ()),
    "kpi_top_people": ("name", "role", d.PERSON_ROLES),
}


def chart_rows(name: str, kpi: DataFrame) -> "pd.DataFrame":
    """The KPI rows its chart draws, as pandas."""
    if name not in _RANKED:
        return kpi.toPandas()
    label, within, values = _RANKED[name]
    groups = [kpi] if within is None else [kpi.where(F.col(within) == v) for v in values]
    tops = [g.orderBy("rank", label).limit(TOP_N) for g in groups]
    return reduce(DataFrame.unionByName, tops).toPandas()


def _kpi(name: str, ins: Mapping[str, Sequence[str]], description: str, lineage: dg.TableColumnLineage,
         compute: Callable[..., DataFrame]) -> dg.AssetsDefinition:
    @gold_table(name, ins, description, lineage, freshness_policy=KPI_FRESHNESS)
    def _asset(context: dg.AssetExecutionContext, **inputs: DataFrame):
        # Persisted: the chart's rows and the write read it once.
        kpi = compute(**inputs).persist()
        try:
            yield dg.Output(kpi, metadata={"chart": dg.MetadataValue.md(chart_markdown(name, chart_rows(name, kpi)))})
        finally:
            kpi.unpersist()

    return _asset


BRIDGE_PERSON, DIM_PERSON = ("gold", "bridge_title_person"), ("gold", "dim_person")
BRIDGE_COUNTRY, DIM_COUNTRY = ("gold", "bridge_title_country"), ("gold", "dim_country")
BRIDGE_GENRE, DIM_GENRE = ("gold", "bridge_title_genre"), ("gold", "dim_genre")
kpi_assets = [
    _kpi("kpi_titles_added_by_month", {"fact": FACT}, "Titles added per month and type.",
         column_lineage({"month": _from((FACT, "date_added")), "type": _from((FACT, "type")),
                         "titles": _from((FACT, "title_key"))}),
         k.kpi_titles_added_by_month),
    _kpi("kpi_top_countries", {"bridge_country": BRIDGE_COUNTRY, "dim_country": DIM_COUNTRY, "fact": FACT},
         "Titles per country (movies, TV shows) and the country's rank by titles.",
         column_lineage({"country": _from((DIM_COUNTRY, "country")),
                         **{c: _from((BRIDGE_COUNTRY, "show_id"), (BRIDGE_COUNTRY, "title_key"), (FACT, "type")) for c in ("titles", "movies", "tv_shows", "rank")}}),
         k.kpi_top_countries),
    _kpi("kpi_genre_by_year", {"bridge_genre": BRIDGE_GENRE, "dim_genre": DIM_GENRE, "fact": FACT},
         "Titles added per year and genre.",
         column_lineage({"year_added": _from((FACT, "date_added")), "genre": _from((DIM_GENRE, "genre")),
                         "titles": _from((BRIDGE_GENRE, "show_id"), (BRIDGE_GENRE, "title_key"))}),
         k.kpi_genre_by_year),
    _kpi("kpi_rating_mix", {"dim_title": DIM_TITLE}, "Titles per rating and type; share = share of the rating within its type.",
         column_lineage({"rating": _from((DIM_TITLE, "rating")), "type": _from((DIM_TITLE, "type")),
                         "titles": _from((DIM_TITLE, "title_key")), "share": _from((DIM_TITLE, "title_key"), (DIM_TITLE, "type"))}),
         k.kpi_rating_mix),
    _kpi("kpi_top_people", {"bridge_person": BRIDGE_PERSON, "dim_person": DIM_PERSON, "fact": FACT},
         "Cast and directors ranked separately by their number of titles.",
         column_lineage({"role": _from((BRIDGE_PERSON, "role")), "name": _from((DIM_PERSON, "name")),
                         "titles": _from((BRIDGE_PERSON, "title_key")), "rank": _from((BRIDGE_PERSON, "title_key"))}),
         k.kpi_top_people),
    _kpi("kpi_movie_minutes_by_decade", {"fact": FACT},
         "Movies with a known duration per release decade: count, average, median and 90th percentile minutes.",
         column_lineage({"release_decade": _from((FACT, "release_year")), "movies": _from((FACT, "title_key")),
                         **{c: _from((FACT, "duration_minutes")) for c in ("avg_minutes", "median_minutes", "p90_minutes")}}),
         k.kpi_movie_minutes_by_decade),
]

model_assets = [
    gold_title_identity, dim_title, dim_title_history, dim_person, dim_country, dim_genre, dim_date,
    bridge_title_person, bridge_title_country, bridge_title_genre, fact_title_added,
]
