"""Gold dimensional model: dimensions, bridges and the fact, from the gold snapshots.

Every input is already the catalog snapshot as of D (gold/netflix_titles and
the four gold lookups), so each function here is a plain DataFrame -> DataFrame
rule; `ingest_date` (= D) is carried through.

Surrogate keys are hashes of the natural value (`xxhash64`), not sequence
numbers: the same person, country or genre gets the same key in every
partition and every run, so BI tools can join across snapshots.

A title is a `title_key` (`transforms.identity`): the same real title landed from two sources is
one row, described by its representative show_id (the last-ingested source); the other source's
show_id and its lookups stay in the parity tables and in gold/title_source_ids. Every function
that takes `ids` (gold/title_source_ids) keeps representatives only.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

PERSON_ROLES = ("cast", "director")

DIM_TITLE_COLUMNS = [
    "title_key", "show_id", "title", "short_title", "type", "type_flag", "rating", "rating_group", "release_year",
    "date_added", "duration_minutes", "duration_seasons", "description",
]
FACT_COLUMNS = [
    "title_key", "show_id", "date_added", "type", "release_year", "duration_minutes", "duration_seasons", "years_to_netflix",
]


def surrogate_key(value: Column) -> Column:
    """A stable bigint key for a natural value (same value -> same key, everywhere)."""
    return F.xxhash64(value)


def representatives(titles: DataFrame, ids: DataFrame) -> DataFrame:
    """The titles that stand for their title_key, with it."""
    keys = ids.where(F.col("is_representative")).select("show_id", "title_key")
    return titles.join(keys, "show_id")


def _representative_rows(rows: DataFrame, ids: DataFrame) -> DataFrame:
    """Lookup rows of representative titles, with their title_key; a row whose show_id is in no
    title (an orphan, which the bridge checks report) stays, with a null title_key."""
    keys = ids.select("show_id", "title_key", "is_representative")
    return rows.join(keys, "show_id", "left").where(F.coalesce(F.col("is_representative"), F.lit(True))).drop(
        "is_representative")


def dim_title(titles: DataFrame, ids: DataFrame) -> DataFrame:
    """One row per title_key: the descriptive attributes of its representative show_id."""
    return representatives(titles, ids).select(*DIM_TITLE_COLUMNS, "ingest_date")


def _values(lookup: DataFrame, value_column: str, name: str) -> DataFrame:
    return lookup.select(F.col("show_id"), F.col(value_column).alias(name), "ingest_date").where(
        F.col(name).isNotNull()
    )


def dim_person(cast: DataFrame, directors: DataFrame) -> DataFrame:
    """Every person named as cast or director, once (person_key, name)."""
    names = _values(cast, "cast_name", "name").unionByName(_values(directors, "director_name", "name"))
    return names.select("name", "ingest_date").distinct().select(
        surrogate_key(F.col("name")).alias("person_key"), "name", "ingest_date"
    )


def dim_value(lookup: DataFrame, value_column: str, name: str) -> DataFrame:
    """A one-column dimension (country, genre) with its surrogate key `<name>_key`."""
    return _values(lookup, value_column, name).select(name, "ingest_date").distinct().select(
        surrogate_key(F.col(name)).alias(f"{name}_key"), name, "ingest_date"
    )


def dim_date(titles: DataFrame) -> DataFrame:
    """A calendar, one row per day over the date_added range of the snapshot."""
    bounds = titles.where(F.col("date_added").isNotNull()).agg(
        F.min("date_added").alias("lo"), F.max("date_added").alias("hi"), F.max("ingest_date").alias("ingest_date")
    )
    days = bounds.where(F.col("lo").isNotNull()).select(
        F.explode(F.sequence("lo", "hi")).alias("date"), "ingest_date"
    )
    return days.select(
        "date",
        F.year("date").alias("year"),
        F.quarter("date").alias("quarter"),
        F.month("date").alias("month"),
        F.date_format("date", "MMMM").alias("month_name"),
        F.date_format("date", "yyyy-MM").alias("year_month"),
        F.dayofmonth("date").alias("day"),
        F.date_format("date", "EEEE").alias("day_name"),
        F.dayofweek("date").isin(1, 7).alias("is_weekend"),
        "ingest_date",
    )


def bridge_title_person(cast: DataFrame, directors: DataFrame, ids: DataFrame) -> DataFrame:
    """(show_id, title_key, person_key, role) for every cast member and director of a title.

    No distinct: a gold lookup holds each (show_id, name) once (silver dedups the pairs and the
    snapshot takes one partition per show_id), so the rows are unique per role already; the
    bridge's blocking key check proves it on every partition."""
    cast_rows = _values(cast, "cast_name", "name").withColumn("role", F.lit("cast"))
    director_rows = _values(directors, "director_name", "name").withColumn("role", F.lit("director"))
    rows = _representative_rows(cast_rows.unionByName(director_rows), ids)
    return rows.select(
        "show_id", "title_key", surrogate_key(F.col("name")).alias("person_key"), "role", "ingest_date"
    )


def bridge_title_value(lookup: DataFrame, value_column: str, name: str, ids: DataFrame) -> DataFrame:
    """(show_id, title_key, <name>_key) for a one-column dimension."""
    return (
        _representative_rows(_values(lookup, value_column, name), ids)
        .select("show_id", "title_key", surrogate_key(F.col(name)).alias(f"{name}_key"), "ingest_date")
        .distinct()
    )


def fact_title_added(titles: DataFrame, ids: DataFrame) -> DataFrame:
    """One row per title (title_key) in the catalog, with its measures."""
    return representatives(titles, ids).select(
        "title_key",
        "show_id",
        "date_added",
        "type",
        "release_year",
        "duration_minutes",
        "duration_seasons",
        (F.year("date_added") - F.col("release_year")).alias("years_to_netflix"),
        "ingest_date",
    )
