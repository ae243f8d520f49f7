"""Gold KPIs: small tables a dashboard plots directly, computed from the
dimensional model of the same partition. Each has a `reconcile` rule: its
total must equal what the fact (and bridges) say, which the blocking checks
assert.
A title is counted by its `title_key` (one per real title, whichever sources named it)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

MOVIE, TV_SHOW = "Movie", "TV Show"


def _titles_by(df: DataFrame, *keys) -> DataFrame:
    return df.groupBy(*keys, "ingest_date").agg(F.count_distinct("title_key").alias("titles"))


def added(fact: DataFrame) -> DataFrame:
    """Titles with a known date_added (the others cannot be placed in time)."""
    return fact.where(F.col("date_added").isNotNull())


def kpi_titles_added_by_month(fact: DataFrame) -> DataFrame:
    return _titles_by(added(fact).withColumn("month", F.trunc("date_added", "month")), "month", "type")


# The fact's columns a KPI over a bridge reads: a fact row changed elsewhere moves none of its groups
# (`transforms/maintain.py`).
TOP_COUNTRIES_FACT_COLUMNS = ("show_id", "type")
GENRE_BY_YEAR_FACT_COLUMNS = ("show_id", "date_added")
TOP_PEOPLE_FACT_COLUMNS = ("show_id",)


def _with_type(bridge: DataFrame, fact: DataFrame) -> DataFrame:
    """Bridge rows of titles in the fact (an orphan bridge row has no type to count)."""
    return bridge.join(fact.select(*TOP_COUNTRIES_FACT_COLUMNS), "show_id")


def kpi_top_countries(bridge_country: DataFrame, dim_country: DataFrame, fact: DataFrame) -> DataFrame:
    rows = _with_type(bridge_country, fact).join(dim_country.drop("ingest_date"), "country_key")
    counts = rows.groupBy("country", "ingest_date").agg(
        F.count_distinct("title_key").alias("titles"),
        F.count_distinct(F.when(F.col("type") == MOVIE, F.col("title_key"))).alias("movies"),
        F.count_distinct(F.when(F.col("type") == TV_SHOW, F.col("title_key"))).alias("tv_shows"),
    )
    ranking = Window.partitionBy("ingest_date").orderBy(F.col("titles").desc())
    return counts.withColumn("rank", F.rank().over(ranking))


def kpi_genre_by_year(bridge_genre: DataFrame, dim_genre: DataFrame, fact: DataFrame) -> DataFrame:
    rows = bridge_genre.join(added(fact.select(*GENRE_BY_YEAR_FACT_COLUMNS)), "show_id").join(
        dim_genre.drop("ingest_date"), "genre_key"
    )
    return _titles_by(rows.withColumn("year_added", F.year("date_added")), "year_added", "genre")


def kpi_rating_mix(dim_title: DataFrame) -> DataFrame:
    """Titles per (rating, type); `share` is the rating's share within its type."""
    counts = _titles_by(dim_title, "rating", "type")
    per_type = Window.partitionBy("ingest_date", "type")
    return counts.withColumn("share", F.col("titles") / F.sum("titles").over(per_type))


def kpi_top_people(bridge_person: DataFrame, dim_person: DataFrame, fact: DataFrame) -> DataFrame:
    """Cast and directors ranked separately by their number of titles.

    Counted per (role, person_key) and named afterwards: the bridge is unique on
    (show_id, person_key, role) and person_key is the name's hash (both checked, blocking),
    so a row count per key is the distinct titles per name, without a distinct aggregation
    or a join of the names over millions of bridge rows."""
    rows = bridge_person.join(fact.select(*TOP_PEOPLE_FACT_COLUMNS), "show_id", "left_semi")
    counts = rows.groupBy("role", "person_key", "ingest_date").agg(F.count(F.lit(1)).alias("titles"))
    named = counts.join(dim_person.drop("ingest_date"), "person_key").select("role", "name", "ingest_date", "titles")
    ranking = Window.partitionBy("ingest_date", "role").orderBy(F.col("titles").desc())
    return named.withColumn("rank", F.rank().over(ranking))


def movies_with_minutes(fact: DataFrame) -> DataFrame:
    """Movies whose duration is known (the original rule turns a missing one into 0)."""
    return fact.where((F.col("type") == MOVIE) & (F.col("duration_minutes") > 0))


def kpi_movie_minutes_by_decade(fact: DataFrame) -> DataFrame:
    movies = movies_with_minutes(fact).where(F.col("release_year").isNotNull())
    decade = (F.floor(F.col("release_year") / 10) * 10).cast("int")
    return movies.groupBy(decade.alias("release_decade"), "ingest_date").agg(
        F.count_distinct("title_key").alias("movies"),
        F.round(F.avg("duration_minutes"), 1).alias("avg_minutes"),
        F.percentile(F.col("duration_minutes"), F.lit(0.5)).alias("median_minutes"),
        F.percentile(F.col("duration_minutes"), F.lit(0.9)).alias("p90_minutes"),
    )
