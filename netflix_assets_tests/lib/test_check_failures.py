"""Every asset check of the product, made to fail.

For each check, `CASES` names the smallest partition that breaks exactly its rule
and the same partition with the defect removed. The test evaluates the product's
own check on both (through a reader serving hand-made tables, as `TableReader`
serves Delta tables): the broken one must fail, with the check's severity
(ERROR when blocking, WARN otherwise) and a description naming the offending
rows; the repaired one must pass, which proves the failure came from the defect.
`test_every_check_of_the_product_has_a_failing_case` fails when a check is added
without a case here.

Format of a case: `(tables, repair, offenders)`: `tables` maps "layer/table" to
rows (dicts, `ingest_date` defaulting to DAY); `repair` overrides some of those
tables to remove the defect; `offenders` are strings the description must hold.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, NamedTuple

import dagster as dg
import pytest
from pyspark.sql import functions as F

from netflix_assets.bronze import assets as bronze_assets
from netflix_assets.definitions import defs
from netflix_assets.gold import checks as gold_checks
from netflix_assets.gold import model_checks
from netflix_assets.lib.checks import AGGREGATES_FROM_KEY, Aggregates
from netflix_assets.lib.delta import observe
from netflix_assets.pipes import silver_titles_task
from netflix_assets.silver import checks as silver_checks
from netflix_assets.transforms.formats import LOOKUPS, TITLE_COLUMNS, TITLE_FORMATS
from netflix_assets.transforms.quality import key_verdict

from netflix_assets_tests.frames import D1

DAY = D1
PREVIOUS = DAY - dt.timedelta(days=1)


class Case(NamedTuple):
    tables: dict[str, list[dict]]
    repair: dict[str, list[dict]]
    offenders: list[str]


# --- the cases, one builder per rule ------------------------------------------------------

def halved(table: str) -> Callable[[], Case]:
    """10 rows yesterday, 4 today (warning); 5 today is half and passes."""
    def case() -> Case:
        old = [{"x": i, "ingest_date": PREVIOUS} for i in range(10)]
        return Case({table: old + [{"x": i} for i in range(4)]}, {table: old + [{"x": i} for i in range(5)]},
                    [str(PREVIOUS), "4 rows", "10"])
    return case


def duplicated_key(table: str, *columns: str) -> Callable[[], Case]:
    """The key (k1, ...) twice and a row with a null key at line 9; the repair keeps one of each
    and gives the null key a value."""
    def case() -> Case:
        def row(value, line):
            return {**{c: value for c in columns}, "_source_file": "f.csv", "_source_line": line}
        good = [row("k1", 2), row("k2", 3)]
        named = "k1" if len(columns) == 1 else "(" + ", ".join(["k1"] * len(columns)) + ")"
        return Case({table: good + [row("k1", 4), row(None, 9)]}, {table: good + [row("k3", 9)]},
                    [named, "(f.csv, 9)"])
    return case


def unknown_header(table: str) -> Callable[[], Case]:
    """One file whose header matched no format (bronze stores its format as read)."""
    def case() -> Case:
        known, columns = _format_of(table)
        rows = [{**{c: "v" for c in columns}, "_source_file": "good.csv", "_source_format": known}]
        bad = {**rows[0], "_source_file": "odd.csv", "_source_format": "netflix_v9"}
        return Case({table: rows + [bad]}, {table: rows + [{**bad, "_source_format": known}]}, ["odd.csv", "netflix_v9"])
    return case


def failed_file() -> Case:
    ledger = "bronze/_ingested_files"
    ok = {"path": "a.csv", "status": "ingested", "run_id": "r1"}
    bad = {"path": "b.csv", "status": "failed: parser crashed", "run_id": "r2"}
    return Case({"bronze/netflix_titles": [{"x": 1}], ledger: [ok, bad]},
                {ledger: [ok, {**bad, "status": "ingested"}]}, ["b.csv"])


def titles_reconciliation() -> Case:
    """3 bronze rows of a.csv; silver 1 + quarantine 1 (a row lost); the repair quarantines it."""
    bronze = [{"show_id": str(i), "_source_file": "a.csv"} for i in range(3)]
    silver = [{"show_id": "0", "_source_file": "a.csv"}]
    refused = {"show_id": "1", "_source_file": "a.csv", "_reason": "malformed"}
    return Case(
        {"bronze/netflix_titles": bronze, "silver/netflix_titles": silver, "quarantine/netflix_titles": [refused]},
        {"quarantine/netflix_titles": [refused, {**refused, "show_id": "2"}]},
        ["3 input rows against 2", "(a.csv, 3, 2)"],
    )


def lookup_reconciliation(table: str) -> Callable[[], Case]:
    """Two lookup-file rows and a Kaggle title listing two values: 4 candidates; silver keeps 3."""
    def case() -> Case:
        lookup = LOOKUPS[table]
        titles = [{"show_id": "s1", "_source_file": "k.csv", "_source_format": "kaggle", "_rescued_data": None,
                   lookup.kaggle_list_column: "A, B"}]
        files = [{"show_id": "7", lookup.source_column: v, "_source_file": "l.csv"} for v in ("x", "y")]
        silver = [{"show_id": s, lookup.value_column: v, "_source_file": f}
                  for s, v, f in (("7", "x", "l.csv"), ("7", "y", "l.csv"), ("s1", "A", "k.csv"))]
        refused = {"show_id": "s1", lookup.value_column: "B", "_source_file": "k.csv", "_reason": "duplicate"}
        return Case(
            {f"bronze/{table}": files, "bronze/netflix_titles": titles, f"silver/{table}": silver,
             f"quarantine/{table}": [{**refused, "ingest_date": PREVIOUS}]},  # yesterday's: none today
            {f"quarantine/{table}": [refused]},
            ["4 input rows against 3", "(k.csv, 2, 1)"],
        )
    return case


def bad_type() -> Case:
    ok = {"show_id": "s1", "type": "Movie"}
    return Case({"silver/netflix_titles": [ok, {"show_id": "s2", "type": "Film"}]},
                {"silver/netflix_titles": [ok, {"show_id": "s2", "type": "TV Show"}]}, ["(s2, Film)"])


def release_year_out_of_range() -> Case:
    ok = {"show_id": "s1", "release_year": 2019}
    return Case({"silver/netflix_titles": [ok, {"show_id": "s2", "release_year": 1900}]},
                {"silver/netflix_titles": [ok, {"show_id": "s2", "release_year": 1925}]}, ["(s2, 1900)", "[1925, 2025]"])


def null_dates_added() -> Case:
    """1 title in 50 without date_added is 2% (passes); 2 are 4%."""
    rows = [{"show_id": f"s{i:02}", "date_added": dt.date(2020, 1, 1)} for i in range(48)]
    return Case({"silver/netflix_titles": rows + [{"show_id": "s98", "date_added": None}, {"show_id": "s99", "date_added": None}]},
                {"silver/netflix_titles": rows + [{"show_id": "s98", "date_added": None},
                                                  {"show_id": "s99", "date_added": dt.date(2020, 1, 1)}]},
                ["4.0%", "s98, s99"])


def date_added_out_of_range() -> Case:
    ok = {"show_id": "s1", "date_added": dt.date(2019, 9, 9)}
    return Case({"silver/netflix_titles": [ok, {"show_id": "s2", "date_added": dt.date(1019, 9, 9)}]},
                {"silver/netflix_titles": [ok, {"show_id": "s2", "date_added": None}]}, ["(s2, 1019-09-09)", "2007-01-01"])


def movie_without_minutes() -> Case:
    ok = {"show_id": "s1", "type": "Movie", "duration_minutes": 90}
    show = {"show_id": "s3", "type": "TV Show", "duration_minutes": 0}
    return Case({"silver/netflix_titles": [ok, show, {"show_id": "s2", "type": "Movie", "duration_minutes": 0}]},
                {"silver/netflix_titles": [ok, show, {"show_id": "s2", "type": "Movie", "duration_minutes": 85}]},
                ["s2", "1 movie(s)"])


def gold_parity() -> Case:
    """Silver (up to DAY) holds s1-s4: s2 is served without newflag, s3 is neither served nor
    dropped, s4 is dropped; the repair serves s2 with its flag and s3."""
    silver = [{"show_id": s, "ingest_date": PREVIOUS if s == "s1" else DAY} for s in ("s1", "s2", "s3", "s4")]
    served = [{"show_id": "s1", "newflag": 1}]
    return Case(
        {"silver/netflix_titles": silver, "gold/netflix_titles": served + [{"show_id": "s2", "newflag": None}],
         "quarantine/gold_netflix_titles": [{"show_id": "s4"}]},
        {"gold/netflix_titles": served + [{"show_id": "s2", "newflag": 1}, {"show_id": "s3", "newflag": 1}]},
        ["(s2, None)", "neither served nor dropped: s3"],
    )


def rank_gap() -> Case:
    rows = [{"duration_minutes": 120, "duration_ranking": 1}, {"duration_minutes": 120, "duration_ranking": 1}]
    return Case({"gold/netflix_titles": rows + [{"duration_minutes": 90, "duration_ranking": 3}]},
                {"gold/netflix_titles": rows + [{"duration_minutes": 90, "duration_ranking": 2}]}, ["(90, 3: expected 2)"])


def null_show_id(table: str) -> Callable[[], Case]:
    def case() -> Case:
        value = LOOKUPS[table.split("/")[1]].value_column
        ok = {"show_id": "s1", value: "v1", "_source_file": "a.csv"}
        bad = {"show_id": None, value: "Tom", "_source_file": "b.csv"}
        return Case({table: [ok, bad]}, {table: [ok, {**bad, "show_id": "s2"}]}, ["(b.csv, Tom)"])
    return case


def orphan_bridge(table: str) -> Callable[[], Case]:
    def case() -> Case:
        dim = [{"show_id": "s1"}]
        return Case({table: [{"show_id": "s1"}, {"show_id": "s9"}], "gold/dim_title": dim},
                    {"gold/dim_title": dim + [{"show_id": "s9"}]}, ["s9"])
    return case


def fact_off_dim_title() -> Case:
    return Case({"gold/fact_title_added": [{"show_id": "s1"}, {"show_id": "s3"}],
                 "gold/dim_title": [{"show_id": "s1"}, {"show_id": "s2"}]},
                {"gold/fact_title_added": [{"show_id": "s1"}, {"show_id": "s2"}]},
                ["missing from the fact: s2", "not in dim_title: s3"])


def overlapping_versions() -> Case:
    """Title 1's second version starts before its first one ends; the repair starts it on that day."""
    first = {"title_key": 1, "valid_from": dt.date(2024, 1, 1), "valid_to": dt.date(2024, 1, 5), "is_current": False}
    second = {"title_key": 1, "valid_from": dt.date(2024, 1, 3), "valid_to": None, "is_current": True}
    other = {"title_key": 2, "valid_from": dt.date(2024, 1, 1), "valid_to": None, "is_current": True}
    return Case({"gold/dim_title_history": [first, second, other]},
                {"gold/dim_title_history": [first, {**second, "valid_from": dt.date(2024, 1, 5)}, other]},
                ["(1, 2024-01-03)"])


def stale_current_version() -> Case:
    """Title 1's current version says PG where dim_title says R (and an old version says PG too);
    title 2's current version lists FR where the gold countries of D list US; title 3's lists the
    genre Comedies where the gold genres of D list Dramas."""
    def title(key, show_id, rating, **kw):
        return {"title_key": key, "show_id": show_id, "title": "T", "type": "Movie", "rating": rating,
                "release_year": 2001, "date_added": dt.date(2020, 1, 1), "duration_minutes": 90,
                "duration_seasons": 1, "description": "d", **kw}

    def version(key, show_id, rating, countries, current=True, genres=("Dramas",)):
        return title(key, show_id, rating, countries=countries, genres=list(genres), is_current=current)
    dim = [title(1, "a", "R"), title(2, "b", "R"), title(3, "c", "R")]
    lookups = {"gold/netflix_countries": [{"show_id": s, "country": "US"} for s in "abc"],
               "gold/netflix_category": [{"show_id": s, "category": "Dramas"} for s in "abc"]}
    old = version(1, "a", "PG", ["US"], current=False)
    history = [old, version(1, "a", "PG", ["US"]), version(2, "b", "R", ["FR"]), version(3, "c", "R", ["US"], genres=["Comedies"])]
    repaired = [old, version(1, "a", "R", ["US"]), version(2, "b", "R", ["US"]), version(3, "c", "R", ["US"])]
    return Case({"gold/dim_title_history": history, "gold/dim_title": dim, **lookups},
                {"gold/dim_title_history": repaired},
                ["not in dim_title (title_key, show_id): (1, a), (2, b), (3, c)",
                 "without a current version (title_key, show_id): (1, a), (2, b), (3, c)"])


def mixed_types() -> Case:
    """One title_key over a Movie and a TV Show; the repair gives the show its own key."""
    ids = [{"title_key": 7, "show_id": "81", "type": "Movie"}, {"title_key": 8, "show_id": "s2", "type": "TV Show"}]
    bad = {"title_key": 7, "show_id": "s1", "type": "TV Show"}
    return Case({"gold/title_source_ids": ids + [bad]}, {"gold/title_source_ids": ids + [{**bad, "title_key": 9}]},
                ["(7, 81, Movie)", "(7, s1, TV Show)"])


def pair_in_review() -> Case:
    """One candidate pair waiting for review; the repair (decided) leaves the table empty."""
    pair = {"show_id": "s7", "candidate_show_id": "80162246", "title": "Veronica", "reason": "title_and_year_only"}
    return Case({"gold/title_match_review": [pair]}, {"gold/title_match_review": []},
                ["(s7, 80162246, Veronica, title_and_year_only)"])


FACT = [  # three titles: s1 and s2 added, s3 without date_added; s2 a movie of 0 minutes
    {"show_id": "s1", "type": "Movie", "date_added": dt.date(2020, 5, 1), "release_year": 2001, "duration_minutes": 90},
    {"show_id": "s2", "type": "Movie", "date_added": dt.date(2020, 5, 2), "release_year": 2002, "duration_minutes": 0},
    {"show_id": "s3", "type": "TV Show", "date_added": None, "release_year": 2003, "duration_minutes": 0},
]


def kpi_totals(kpi: str, total: str, expected: int, other: dict[str, list[dict]] | None = None,
               group: str | None = None) -> Callable[[], Case]:
    """The KPI counts one title more than the fact gives (`expected` is the right total)."""
    def case() -> Case:
        def rows(n):
            return [{total: n, **({group: "cast"} if group else {})}]
        tables = {"gold/fact_title_added": FACT, **(other or {})}
        return Case({**tables, f"gold/{kpi}": rows(expected + 1)}, {f"gold/{kpi}": rows(expected)},
                    [f"{group and 'cast' or 'all'}: {expected + 1}, {expected}"])
    return case


def shares_off() -> Case:
    movies = [{"type": "Movie", "share": 0.5}, {"type": "Movie", "share": 0.4}]
    return Case({"gold/kpi_rating_mix": movies}, {"gold/kpi_rating_mix": movies[:1] + [{"type": "Movie", "share": 0.5}]},
                ["Movie: 0.9"])


PAIRS = [{"show_id": "s1", "k": "a"}, {"show_id": "s1", "k": "a"}, {"show_id": "s3", "k": "b"}]

CASES: dict[str, Callable[[], Case]] = {
    # bronze
    **{f"bronze/{t}:header_recognised": unknown_header(f"bronze/{t}") for t in ("netflix_titles", *LOOKUPS)},
    **{f"bronze/{t}:row_count_not_halved": halved(f"bronze/{t}") for t in ("netflix_titles", *LOOKUPS)},
    "bronze/netflix_titles:no_failed_files": failed_file,
    # silver
    "silver/netflix_titles:show_id_not_null_unique": duplicated_key("silver/netflix_titles", "show_id"),
    "silver/netflix_titles:reconciliation": titles_reconciliation,
    "silver/netflix_titles:type_allowed": bad_type,
    "silver/netflix_titles:release_year_in_range": release_year_out_of_range,
    "silver/netflix_titles:date_added_null_share": null_dates_added,
    "silver/netflix_titles:date_added_in_range": date_added_out_of_range,
    "silver/netflix_titles:movie_minutes_known": movie_without_minutes,
    **{f"silver/{t}:row_count_not_halved": halved(f"silver/{t}") for t in ("netflix_titles", *LOOKUPS)},
    **{f"silver/{t}:show_id_{lk.value_column}_not_null_unique": duplicated_key(f"silver/{t}", "show_id", lk.value_column)
       for t, lk in LOOKUPS.items()},
    **{f"silver/{t}:reconciliation": lookup_reconciliation(t) for t in LOOKUPS},
    # gold: the original DLT tables
    "gold/netflix_titles:show_id_not_null_unique": duplicated_key("gold/netflix_titles", "show_id"),
    "gold/netflix_titles:parity_expectations": gold_parity,
    "gold/netflix_titles:duration_ranking_dense": rank_gap,
    **{f"gold/{t}:show_id_not_null": null_show_id(f"gold/{t}") for t in LOOKUPS},
    # gold: the title identity
    "gold/title_source_ids:show_id_not_null_unique": duplicated_key("gold/title_source_ids", "show_id"),
    "gold/title_source_ids:one_type_per_title_key": mixed_types,
    "gold/title_match_review:no_unmerged_duplicates": pair_in_review,
    # gold: the dimensional model
    "gold/dim_title:title_key_not_null_unique": duplicated_key("gold/dim_title", "title_key"),
    "gold/dim_title_history:title_key_valid_from_not_null_unique":
        duplicated_key("gold/dim_title_history", "title_key", "valid_from"),
    "gold/dim_title_history:versions_ordered": overlapping_versions,
    "gold/dim_title_history:current_rows_equal_dim_title": stale_current_version,
    "gold/dim_person:person_key_not_null_unique": duplicated_key("gold/dim_person", "person_key"),
    "gold/dim_country:country_key_not_null_unique": duplicated_key("gold/dim_country", "country_key"),
    "gold/dim_genre:genre_key_not_null_unique": duplicated_key("gold/dim_genre", "genre_key"),
    "gold/dim_date:date_not_null_unique": duplicated_key("gold/dim_date", "date"),
    "gold/fact_title_added:title_key_not_null_unique": duplicated_key("gold/fact_title_added", "title_key"),
    "gold/bridge_title_person:show_id_person_key_role_not_null_unique":
        duplicated_key("gold/bridge_title_person", "show_id", "person_key", "role"),
    "gold/fact_title_added:matches_dim_title": fact_off_dim_title,
    **{f"gold/{b}:show_id_in_dim_title": orphan_bridge(f"gold/{b}") for b in model_checks.BRIDGES},
    # gold: KPIs (FACT: 3 titles, 2 added, 1 movie with minutes)
    "gold/kpi_titles_added_by_month:totals_reconcile_with_fact": kpi_totals("kpi_titles_added_by_month", "titles", 2),
    "gold/kpi_rating_mix:totals_reconcile_with_fact": kpi_totals("kpi_rating_mix", "titles", 3),
    "gold/kpi_movie_minutes_by_decade:totals_reconcile_with_fact": kpi_totals("kpi_movie_minutes_by_decade", "movies", 1),
    "gold/kpi_top_countries:totals_reconcile_with_fact": kpi_totals(  # distinct pairs of titles in the fact
        "kpi_top_countries", "titles", 2, {"gold/bridge_title_country": [
            {"show_id": r["show_id"], "country_key": r["k"]} for r in PAIRS]}),
    "gold/kpi_genre_by_year:totals_reconcile_with_fact": kpi_totals(  # ... of titles added (s3 is not)
        "kpi_genre_by_year", "titles", 1, {"gold/bridge_title_genre": [
            {"show_id": r["show_id"], "genre_key": r["k"]} for r in PAIRS]}),
    "gold/kpi_top_people:totals_reconcile_with_fact": kpi_totals(
        "kpi_top_people", "titles", 2, {"gold/bridge_title_person": [
            {"show_id": s, "person_key": "p1", "role": "cast"} for s in ("s1", "s3")]}, group="role"),
    "gold/kpi_rating_mix:shares_sum_to_one_per_type": shares_off,
    **{f"gold/{t}:row_count_not_halved": halved(f"gold/{t}") for t in (
        "netflix_titles", *LOOKUPS, "dim_title", "dim_title_history", "dim_person", "dim_country", "dim_genre", "dim_date",
        "bridge_title_person", "bridge_title_country", "bridge_title_genre", "fact_title_added",
        "kpi_titles_added_by_month", "kpi_top_countries", "kpi_genre_by_year", "kpi_rating_mix", "kpi_top_people",
        "kpi_movie_minutes_by_decade")},
}

# The check the Databricks Pipes task reports for silver titles (deployment `pipes`): its
# verdict is `transforms.quality.key_verdict`, evaluated in `test_the_pipes_task_check_fails...`.
PIPES_CHECK = f"silver/netflix_titles:{silver_titles_task.CHECK_NAME}"


# --- the product's checks and a reader of hand-made tables --------------------------------

def _format_of(table: str) -> tuple[str, tuple[str, ...]]:
    """A format the table accepts, and the table's source columns."""
    name = table.split("/")[1]
    if name in LOOKUPS:
        return LOOKUPS[name].format.name, LOOKUPS[name].format.columns
    return TITLE_FORMATS[0].name, TITLE_COLUMNS


def _product_checks() -> dict:
    listed = [*bronze_assets.checks, *silver_checks.checks, *gold_checks.checks, *model_checks.checks]
    return {f"{'/'.join(c.key)}:{c.name}": c for c in listed}


class HandMadeLake:
    """Serves hand-made tables the way `lib.checks.TableReader` serves Delta tables."""

    def __init__(self, spark, tables: dict[str, list[dict]]):
        self.frames = {}
        for name, rows in tables.items():
            rows = [{**r, "ingest_date": r.get("ingest_date", DAY)} for r in rows]
            columns = sorted({c for r in rows for c in r}) or ["ingest_date"]
            data = [tuple(r.get(c) for c in columns) for r in rows]
            schema = _schema(columns, rows)
            self.frames[name] = spark.createDataFrame(data, schema)

    def table(self, key):
        return self.frames["/".join(key)]

    def partition(self, key, day):
        return self.table(key).where(F.col("ingest_date") == F.lit(day))

    def partition_or_none(self, key, day):
        return self.partition(key, day) if "/".join(key) in self.frames else None

    def partition_row_counts(self, key, day):
        rows = self.table(key).where(F.col("ingest_date") <= F.lit(day)).groupBy("ingest_date").count().collect()
        return {r["ingest_date"]: r["count"] for r in rows}

    def partition_rows(self, key, day):
        return self.partition_row_counts(key, day).get(day, 0) if "/".join(key) in self.frames else 0


def _schema(columns, rows) -> str:
    def kind(column):
        values = [r.get(column) for r in rows if r.get(column) is not None]
        sample = values[0] if values else ""
        if isinstance(sample, list):
            return "array<string>"
        if isinstance(sample, bool):
            return "boolean"
        if isinstance(sample, int):
            return "bigint"
        if isinstance(sample, float):
            return "double"
        if isinstance(sample, dt.date):
            return "date"
        return "string"
    return ", ".join(f"`{c}` {kind(c)}" for c in columns)


# --- the tests -----------------------------------------------------------------------------

def test_every_check_of_the_product_has_a_failing_case():
    declared = {f"{k.asset_key.to_user_string()}:{k.name}" for k in defs.resolve_asset_graph().asset_check_keys}
    assert declared == set(_product_checks())
    assert declared - set(CASES) == set(), "checks without a failing case"
    assert set(CASES) - declared == set(), "cases of checks that do not exist"


@pytest.mark.parametrize("check_id", sorted(CASES))
def test_the_check_fails_on_its_defect_and_passes_without_it(spark, check_id):
    check = _product_checks()[check_id]
    case = CASES[check_id]()
    table = "/".join(check.key)

    def evaluate(tables, observed: bool):
        lake = HandMadeLake(spark, tables)
        df = lake.partition(check.key, DAY) if table in tables else spark.createDataFrame([], "ingest_date date")
        if not observed:
            return check.evaluate(df, DAY, lake)
        result = check.evaluate(df, DAY, lake, (_observed_by_a_write(check, df),))
        assert result.metadata[AGGREGATES_FROM_KEY].value == "a write", result.metadata
        return result

    # A check its table's write observes is made to fail both ways: from the write's values, and
    # from its own query of the table (after any other commit, or a keyed refresh's partial write).
    for observed in ((False, True) if check.metrics else (False,)):
        failed = evaluate(case.tables, observed)
        assert not failed.passed, (observed, failed)
        assert failed.severity == (dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN)
        for name in case.offenders:
            assert name in (failed.description or ""), (observed, name, failed.description)

        repaired = evaluate({**case.tables, **case.repair}, observed)
        assert repaired.passed, (observed, repaired)


def test_a_key_check_counted_by_its_write_sees_a_duplicate_alone_and_a_null_alone(spark):
    """The write's own counts decide a key check (only a failure is queried again, for its names), so
    each count must see its defect alone: the cases above hold a duplicate and a null key together."""
    keyed = {i: c for i, c in _product_checks().items() if c.numbered_keys and c.metrics}
    assert len(keyed) == 15
    for check_id, check in sorted(keyed.items()):
        [columns] = check.numbered_keys
        table = "/".join(check.key)

        def row(value, line):
            return {**{c: value for c in columns}, "_source_file": "f.csv", "_source_line": line}
        good = [row("k1", 2), row("k2", 3)]
        for defect, counts in ((row("k1", 4), (0, 1)), (row(None, 9), (1, 0))):
            lake = HandMadeLake(spark, {table: good + [defect]})
            df = lake.partition(check.key, DAY)
            observed = _observed_by_a_write(check, df)
            named = {m.rsplit("__", 1)[1]: int(v) for m, v in observed.values.items() if m.startswith(check.name + "__")}
            assert (named["null_keys"], named["duplicate_keys"]) == counts, (check_id, named)


def _observed_by_a_write(check, df) -> Aggregates:
    """The check's metrics as the IO manager's write of `df` observes them (an action over the rows)."""
    rows, values = observe(df, dict(check.metrics), check.numbered_keys)
    rows.collect()
    got = values()
    assert got is not None, f"{check.name}: its metrics were not observed"
    return Aggregates(got, "a write")


def test_the_pipes_task_check_fails_on_a_duplicated_or_null_show_id(spark):
    """The Pipes deployment's own silver titles check: the same verdict as the key check."""
    assert PIPES_CHECK == "silver/netflix_titles:show_id_not_null_unique"
    rows = [("s1", "a.csv", 2), ("s1", "a.csv", 3), (None, "a.csv", 4), ("s2", "a.csv", 5)]
    df = spark.createDataFrame(rows, "show_id string, _source_file string, _source_line int")
    verdict = key_verdict(df, ["show_id"])
    assert not verdict.passed and (verdict.null_keys, verdict.duplicate_keys) == (1, 1)
    assert "duplicated key(s): s1" in verdict.description and "(a.csv, 4)" in verdict.description
    assert key_verdict(df.where("show_id = 's2'"), ["show_id"]).passed


def test_a_key_verdict_is_exact_when_keys_share_a_hash(spark):
    """The key check counts rows per hash of the key: keys that share one (every key here) are
    told apart by the key itself, so they are neither duplicates nor hide one."""
    from pyspark.sql import functions as F

    def collide(*columns):
        return F.lit(7).cast("long")

    rows = [("s1", "x", "a.csv", 2), ("s1", "y", "a.csv", 3), ("s2", "x", "a.csv", 4), (None, "x", "a.csv", 5)]
    df = spark.createDataFrame(rows, "show_id string, value string, _source_file string, _source_line int")
    unique = key_verdict(df.where("show_id IS NOT NULL"), ["show_id", "value"], key_hash=collide)
    assert unique.passed and (unique.rows, unique.duplicate_keys) == (3, 0), unique
    verdict = key_verdict(df, ["show_id", "value"], key_hash=collide)
    assert not verdict.passed and (verdict.rows, verdict.null_keys, verdict.duplicate_keys) == (4, 1, 0), verdict
    doubled = key_verdict(df.unionByName(df.where("show_id = 's2'")), ["show_id", "value"], key_hash=collide)
    assert (doubled.null_keys, doubled.duplicate_keys) == (1, 1) and "duplicated key(s): (s2, x)" in doubled.description
