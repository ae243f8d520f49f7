"""Gold: catalog snapshots as of a partition date (the contract's one rule)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

# DLT expect_or_drop parity: (reason, column that must not be null).
GOLD_TITLES_EXPECTATIONS = (("show_id_not_null", "show_id"), ("newflag_not_null", "newflag"))


# The ingest order (silver's "latest record wins" order) and a show_id's first place in it.
ORDER = ("_ingested_at", "_source_file", "_source_line")
FIRST_INGESTED = "_first_ingested"


def snapshot_as_of(silver: DataFrame, as_of: dt.date, key: str = "show_id", first: bool = False) -> DataFrame:
    """For each key, its rows from the latest silver partition <= as_of in which
    it appears (a newer title version or a newer cast list replaces the older
    one). `ingest_date` becomes as_of; `_version_date` keeps where the rows came from.
    `first`: also `_first_ingested`, the ingest order of the key's first record <= as_of
    (which member of a conformed title came first: its title_key, `identity.py`)."""
    upto = silver.where(F.col("ingest_date") <= F.lit(as_of))
    by_key = Window.partitionBy(key)
    df = upto.withColumn("_version_date", F.col("ingest_date")).withColumn("_latest", F.max("ingest_date").over(by_key))
    if first:
        df = df.withColumn(FIRST_INGESTED, F.min(F.struct(*ORDER)).over(by_key))
    return (
        df.where(F.col("ingest_date") == F.col("_latest"))
        .drop("_latest")
        .withColumn("ingest_date", F.lit(as_of).cast("date"))
    )


def duration_ranks(snapshot: DataFrame) -> DataFrame:
    """(duration_minutes, duration_ranking): the dense rank of each distinct duration, descending
    (an incremental refresh ranks part of a snapshot by the ranking of the whole)."""
    durations = snapshot.select("duration_minutes").distinct()
    return durations.withColumn("duration_ranking", F.dense_rank().over(Window.orderBy(F.col("duration_minutes").desc())))


def gold_titles(snapshot: DataFrame, ranks: DataFrame | None = None) -> DataFrame:
    """The original DLT gold table: snapshot + duration_ranking + newflag, with
    `_reason` on rows that fail an expectation (dropped to quarantine). `ranks`: the
    ranking of the whole snapshot when `snapshot` is only part of it (an incremental refresh)."""
    if ranks is None:
        # One global ranking over the snapshot: a single-partition window, by definition.
        df = snapshot.withColumn("duration_ranking", F.dense_rank().over(Window.orderBy(F.col("duration_minutes").desc())))
    else:
        # duration_minutes is never null in silver (null -> 0): an inner equi-join keeps every row.
        df = snapshot.join(F.broadcast(ranks), "duration_minutes")
    df = df.withColumn("newflag", F.lit(1))
    reason = None
    for name, column in GOLD_TITLES_EXPECTATIONS:
        failed = F.col(column).isNull()
        reason = F.when(failed, name) if reason is None else reason.when(failed, name)
    return df.select(*snapshot.columns, "duration_ranking", "newflag", reason.alias("_reason"))


def served_and_dropped(ranked: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(gold rows, the rows an expectation dropped, with `_reason`) of `gold_titles`' output."""
    return ranked.where(F.col("_reason").isNull()).drop("_reason"), ranked.where(F.col("_reason").isNotNull())


@dataclass(frozen=True)
class TitlesRefresh:
    """gold titles[D] after some show_ids changed: `reranked` when every row was rewritten (the set
    of durations moved, so the global ranking did), else only the changed show_ids' rows. `ranks`
    is persisted (read by both outputs): unpersist it once they are written."""

    served: DataFrame
    dropped: DataFrame
    reranked: bool
    ranks: DataFrame


def refresh_gold_titles(
    silver: DataFrame, keys: Sequence[str], served: DataFrame, dropped: DataFrame, day: dt.date
) -> TitlesRefresh:
    """gold titles[D] and its dropped rows (`served`, `dropped`: as stored) after the show_ids `keys`
    changed in silver[D] (`silver`: its partitions <= D): touched show_ids take their snapshot rows
    (those of silver[D], and their first record's place), the others keep theirs. The ranking is global: when the set of durations moves, every row is re-ranked."""
    touched = F.col("show_id").isin(list(keys))
    # From every partition <= D, as a rebuild: a touched title's first record may be of an earlier day.
    fresh = snapshot_as_of(silver.where(touched), day, first=True)
    kept = served.where(~touched).drop("duration_ranking", "newflag")
    kept_dropped = dropped.where(~touched).drop("duration_ranking", "newflag", "_reason")
    ranks = duration_ranks(kept.unionByName(kept_dropped).unionByName(fresh)).persist()
    before = served.select("duration_minutes", "duration_ranking").distinct()
    reranked = sorted(map(tuple, ranks.collect())) != sorted(map(tuple, before.collect()))
    new_served, new_dropped = served_and_dropped(gold_titles(fresh, ranks))
    if not reranked:
        return TitlesRefresh(new_served, new_dropped, False, ranks)
    return TitlesRefresh(
        gold_titles(kept, ranks).drop("_reason").unionByName(new_served),
        gold_titles(kept_dropped, ranks).unionByName(new_dropped),
        True,
        ranks,
    )


def gold_lookup(snapshot: DataFrame, value_column: str) -> DataFrame:
    """`_source_file` stays (lineage; an incremental refresh tells by it which silver rows gold holds)."""
    return snapshot.where(F.col("show_id").isNotNull()).select(
        "show_id", value_column, "_source_file", "_version_date", "ingest_date"
    )
