"""Title history (SCD type 2): every change of a title's attributes, from the daily dim_title snapshots.

Why from the snapshots: gold is a snapshot per day (`ingest_date` = D), and dim_title(D) already
says which show_id describes each title_key that day (the representative: silver's "latest record
wins", then the title identity's last-ingested source). A history built from those snapshots is
exactly "what dim_title said, day by day", so its current rows equal dim_title by construction,
and a title conformed across two exports keeps one history under its title_key.

The sequencing rule (the data contract's "Title history"):
- A version is a run of consecutive snapshot days on which a title_key has the same tracked
  attributes (`TRACKED`: its representative show_id, the descriptive columns, and its sorted
  countries and genres). `valid_from` is the first day of the run; `valid_to` is the first
  snapshot day after it (the day the next version starts, or the day the title left the
  catalogue), null while the version is current; `is_current` = valid_to is null.
- The day is the unit: within one day, files are ordered by silver's rule (`_ingested_at`,
  `_source_file`, `_source_line`) and only the day's final state is a version. Two changes to one
  title on one day therefore make one version (the later state); a change and its reversal on
  the same day make none.
- A change reverted on a later day is a new version equal to an older one: the history records
  what BI users saw, not only distinct states.
- Snapshot days are the days dim_title has a partition (<= D); a day without a partition is not
  a day the title changed or left.

Two ways to the same table (a test folds random days both ways and compares them row for row):
- `title_history`: from every snapshot up to D, one pass (two windows by title_key). It needs
  nothing but dim_title, so it is also how a partition is repaired; it reads O(days x catalogue).
- `advance`: from the history as of the snapshot day before D and D's snapshot alone, one full
  outer join of the current versions with D's rows: O(catalogue), whatever the number of days
  (measured once on 2 cores, 100k titles x 30 days, no write: 2.4-3.8 s against 8.2-9.4 s).
  `previous_history` finds that history in the table's own partitions: the partition of the last
  snapshot day, or D's own partition rewound (`rewind`: a same-day refresh), each only if it was
  written after every snapshot it was made of, and None otherwise (then the caller rebuilds).

No Dagster here, no driver-side loop.
"""

from __future__ import annotations

import datetime as dt
from typing import Mapping, Optional

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

LISTS = {"countries": "country", "genres": "category"}  # history column -> the gold lookup's value column
TRACKED = [
    "show_id", "title", "type", "rating", "release_year", "date_added", "duration_minutes", "duration_seasons",
    "description", *LISTS,
]
HISTORY_COLUMNS = ["title_key", *TRACKED, "valid_from", "valid_to", "is_current"]


def _listed(lookup: DataFrame, value_column: str, name: str) -> DataFrame:
    """(show_id, ingest_date) -> the sorted distinct values of the lookup on that day's snapshot."""
    return lookup.where(F.col(value_column).isNotNull()).groupBy("show_id", "ingest_date").agg(
        F.array_sort(F.collect_set(value_column)).alias(name))


def title_versions(dim_title: DataFrame, countries: DataFrame, genres: DataFrame) -> DataFrame:
    """One row per (title_key, snapshot day) with the tracked attributes; a title without countries
    or genres has an empty list (not null: an empty list and a missing lookup row are one state)."""
    rows = dim_title.select("title_key", *[c for c in TRACKED if c not in LISTS], "ingest_date")
    for name, lookup in (("countries", countries), ("genres", genres)):
        rows = rows.join(_listed(lookup, LISTS[name], name), ["show_id", "ingest_date"], "left").withColumn(
            name, F.coalesce(F.col(name), F.array().cast("array<string>")))
    return rows.select("title_key", *TRACKED, "ingest_date")


def title_history(versions: DataFrame, as_of: dt.date) -> DataFrame:
    """The SCD2 history of `title_versions` (snapshot days <= as_of), as a snapshot of day `as_of`."""
    versions = versions.where(F.col("ingest_date") <= F.lit(as_of))
    # The snapshot days, each with the next one (a handful of rows: one window over all of them).
    days = versions.select("ingest_date").distinct().select(
        "ingest_date", F.lead("ingest_date").over(Window.partitionBy(F.lit(0)).orderBy("ingest_date")).alias("_next_day"),
        F.lag("ingest_date").over(Window.partitionBy(F.lit(0)).orderBy("ingest_date")).alias("_previous_day"))
    by_title = Window.partitionBy("title_key").orderBy("ingest_date")
    marked = versions.join(F.broadcast(days), "ingest_date").select(
        "*", F.struct(*TRACKED).alias("_attrs"),
        F.lag("ingest_date").over(by_title).alias("_seen_before"),
        F.lag(F.struct(*TRACKED)).over(by_title).alias("_attrs_before"))
    # A version starts on a title's first day, after a snapshot day it was absent from, or on a change.
    starts = (F.col("_seen_before").isNull() | ~F.col("_seen_before").eqNullSafe(F.col("_previous_day"))
              | ~F.col("_attrs").eqNullSafe(F.col("_attrs_before")))
    numbered = marked.withColumn("_version", F.sum(starts.cast("int")).over(
        by_title.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
    runs = numbered.groupBy("title_key", "_version").agg(
        F.min("ingest_date").alias("valid_from"),
        # The first snapshot day after the run: the next version's first day, or the day it left.
        F.max_by("_next_day", "ingest_date").alias("valid_to"),
        F.min_by("_attrs", "ingest_date").alias("_attrs"))
    return runs.select(
        "title_key", *[F.col(f"_attrs.{c}").alias(c) for c in TRACKED], "valid_from", "valid_to",
        F.col("valid_to").isNull().alias("is_current"), F.lit(as_of).alias("ingest_date"))


def _as_of(history: DataFrame, day: dt.date) -> DataFrame:
    return history.select(*HISTORY_COLUMNS, F.lit(day).alias("ingest_date"))


def rewind(history: DataFrame, day: dt.date) -> DataFrame:
    """The history as of the snapshot day before `day`, from the history as of `day`: the versions
    that started on `day` did not exist yet, and those it closed were current (a version closed on
    `day` ran up to the snapshot day before it)."""
    reopened = F.col("valid_to") == F.lit(day)
    return history.where(F.col("valid_from") < F.lit(day)).withColumn(
        "valid_to", F.when(reopened, F.lit(None).cast("date")).otherwise(F.col("valid_to"))).withColumn(
        "is_current", F.col("valid_to").isNull())


def advance(previous: DataFrame, snapshot: DataFrame, day: dt.date) -> DataFrame:
    """The history as of `day` from the history as of the snapshot day before it (`previous`) and
    the `title_versions` rows of `day` (`snapshot`): a current version whose title is absent from
    the snapshot or changed closes on `day`; a changed or new (or returning) title opens a version.
    One full outer join of the current versions with the day's rows; each joined row yields its
    version(s) through one explode (not a union of three filters, which would join three times)."""
    current = previous.where(F.col("is_current")).select("title_key", F.struct(*TRACKED).alias("_was"), "valid_from")
    today = snapshot.where(F.col("ingest_date") == F.lit(day)).select("title_key", F.struct(*TRACKED).alias("_now"))
    same = F.col("_was").eqNullSafe(F.col("_now"))
    no_day = F.lit(None).cast("date")

    def version(attrs: str, valid_from, valid_to):
        return F.struct(*[F.col(f"{attrs}.{c}").alias(c) for c in TRACKED], valid_from.alias("valid_from"),
                        valid_to.alias("valid_to"))

    was = F.when(F.col("_was").isNotNull(), version("_was", F.col("valid_from"), F.when(same, no_day).otherwise(F.lit(day))))
    now = F.when(F.col("_now").isNotNull() & ~same, version("_now", F.lit(day), no_day))
    touched = current.join(today, "title_key", "full_outer").select(
        "title_key", F.explode(F.array_compact(F.array(was, now))).alias("_v")).select(
        "title_key", *[F.col(f"_v.{c}").alias(c) for c in (*TRACKED, "valid_from", "valid_to")])
    closed = previous.where(~F.col("is_current")).select("title_key", *TRACKED, "valid_from", "valid_to")
    return _as_of(closed.unionByName(touched).withColumn("is_current", F.col("valid_to").isNull()), day)


def previous_history(own: DataFrame, stored: Mapping[dt.date, int], snapshots: Mapping[dt.date, int],
                     day: dt.date) -> Optional[tuple[DataFrame, str]]:
    """The history as of the snapshot day before `day`, from the history table's own partitions
    (`own`), and which partition it came from; None when they cannot say it exactly (the caller
    rebuilds).

    `stored`: each day the history table holds rows for, with when its partition was written;
    `snapshots`: each dim_title snapshot day (a partition with rows), with when the day's dim_title,
    countries or genres were last written (write times from the Delta log, any common unit).
    A stored partition is trusted only if it was written after every snapshot it was made of: an
    older snapshot rewritten since (a backfill, a same-day refresh whose history step failed) makes
    it stale, and advancing a stale history would carry its error forward unseen.
    - D's snapshot must have rows: a day without one is not a snapshot day, it closes nothing.
    - D's own partition rewound (a second file the same day), if written after every snapshot
      before D;
    - else the partition of the last snapshot day before D, if written after every snapshot up to it.
    Write times miss a snapshot partition deleted or emptied since, a compacted history partition,
    and a concurrent run rewriting an older snapshot while a history is computed (the
    data contract's "Title history"): a rebuild (any run not tagged incremental, as the daily run of
    today's partition) repairs those."""
    if day not in snapshots:
        return None
    before = [d for d in snapshots if d < day]

    def trusted(partition: dt.date, through: list[dt.date]) -> bool:
        return partition in stored and all(stored[partition] > snapshots[d] for d in through)

    if trusted(day, before):
        return rewind(own.where(F.col("ingest_date") == F.lit(day)), day), f"{day} (rewound)"
    last = max(before, default=None)
    if last is not None and trusted(last, [d for d in before if d <= last]):
        return own.where(F.col("ingest_date") == F.lit(last)), str(last)
    return None
