"""Incremental refresh of a partition that already exists: recompute only the keys that a
batch of new files touches, and replace exactly those keys' rows (one `replaceWhere` commit
per table), the way a Delta Live Tables / Auto Loader flow updates a table per micro-batch.

When: runs tagged `netflix/refresh=incremental`, which `landed_titles_job` carries (the
landing-zone sensor launches it per batch of new titles files once the day's lookup pulls are
in: only new titles files change). Every other run (`lakehouse_job`, a UI click, a backfill)
rebuilds whole partitions, which is also how a partition is repaired.

Which files are new is read from the data, not told by the run: a file is new for a table when
its input partition holds rows of it and none of the table's outputs do (every input row of
silver lands in silver or in quarantine; every silver row of D is in gold[D]). So a run that
failed half-way leaves its files new for the next run, and two batches never hide each other.

Why recomputing by key is exact: silver's dedup and gold's snapshot rule are per key (show_id),
so the rows of a key depend only on the input rows of that key. The recomputed input is every
row of the touched keys plus every row of the new files (rows without a key go to quarantine on
their own), and the same predicate selects the rows replaced in each output.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import dagster as dg

from ..partitions import PARTITION_COLUMN
from .tables import sql_in

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from .checks import TableReader

REFRESH_TAG = "netflix/refresh"
INCREMENTAL = "incremental"
# Past these, a whole-partition rebuild is as cheap as a keyed one, and the replaceWhere
# predicate (a literal IN list) stays a few hundred kB at most.
MAX_KEYS = 20_000
MAX_FILES = 2_000
# Below this many rows in the table's partition a rebuild is the cheaper path: a keyed refresh
# costs a few Spark jobs of its own (which files are new, which keys, a predicate-checked
# replace), ~5-10 s on 2 cores whatever the size, while rebuilding 100k rows costs about that.
# Measured by `make bench` (K = 10, 100, 1,000 files of 1,000 titles; BENCHMARKS.md).
MIN_ROWS = 200_000
SOURCE_FILE = "_source_file"


@dataclass(frozen=True)
class KeyedRefresh:
    """The new files of a partition and the keys (show_ids) their rows touch."""

    files: tuple[str, ...]
    keys: tuple[str, ...]

    def source_rows(self, key: "Column") -> "Column":
        """Input (or quarantine) rows to recompute: the new files' rows and every row of a touched key."""
        from pyspark.sql import functions as F

        return F.col(SOURCE_FILE).isin(list(self.files)) | key.isin(list(self.keys))

    def source_predicate(self, key_sql: str = "trim(show_id)") -> str:
        """`source_rows` as the SQL predicate of the rows replaced in a table of raw rows (quarantine)."""
        return f"({sql_in(SOURCE_FILE, self.files)} OR {sql_in(key_sql, self.keys)})"

    def key_predicate(self, column: str = "show_id") -> str:
        """The rows replaced in a table keyed by a clean `show_id` (silver, gold)."""
        return sql_in(column, self.keys)

    def metadata(self) -> dict:
        return {"refresh": "incremental", "refresh_new_files": len(self.files), "refresh_keys": len(self.keys)}


FULL_REFRESH = {"refresh": "full"}


@dataclass(frozen=True)
class Replace:
    """An output that replaces only the rows of its partition matching `where` (see `SparkDeltaIOManager`)."""

    df: "DataFrame"
    where: str


def incremental_requested(context: dg.AssetExecutionContext) -> bool:
    return context.run.tags.get(REFRESH_TAG) == INCREMENTAL


def new_files(inputs: Sequence["DataFrame"], outputs: Sequence["DataFrame"]) -> list[str]:
    """`_source_file`s present in the inputs and absent from every output (one Spark job)."""
    def files(frames: Sequence["DataFrame"]) -> "DataFrame":
        union = None
        for df in frames:
            df = df.select(SOURCE_FILE)
            union = df if union is None else union.unionByName(df)
        return union.where(union[SOURCE_FILE].isNotNull()).distinct()

    missing = files(inputs).join(files(outputs), SOURCE_FILE, "left_anti")
    return sorted(r[SOURCE_FILE] for r in missing.collect())


def touched_keys(rows: "DataFrame", key: "Column") -> list[str]:
    from pyspark.sql import functions as F

    keys = rows.select(key.alias("_key")).where(F.col("_key").isNotNull() & (F.col("_key") != "")).distinct()
    return sorted(r["_key"] for r in keys.collect())


def plan(
    context: dg.AssetExecutionContext,
    reader: "TableReader",
    primary: Sequence[str],
    inputs: Sequence["DataFrame"],
    outputs: Sequence[Optional["DataFrame"]],
    rows_of_files,
    key: "Column",
) -> Optional[KeyedRefresh]:
    """A keyed refresh of the partition, or None for a whole-partition rebuild.

    `primary`: the table whose partition must already hold `MIN_ROWS` rows (else: rebuild).
    `inputs` / `outputs`: the partition's input rows and output rows (`_source_file` each).
    `rows_of_files(files)`: the input rows of those files, whose `key` values are the touched keys.
    """
    day = dt.date.fromisoformat(context.partition_key)
    if not incremental_requested(context):
        return None
    rows = reader.partition_rows(primary, day)
    if rows == 0 or rows < MIN_ROWS:  # a first build, or small enough to rebuild
        return None
    files = new_files(inputs, [o for o in outputs if o is not None])
    if len(files) > MAX_FILES:
        context.log.info(f"{len(files)} new files: rebuilding the partition")
        return None
    keys = touched_keys(rows_of_files(files), key) if files else []
    if len(keys) > MAX_KEYS:
        context.log.info(f"{len(keys)} touched keys: rebuilding the partition")
        return None
    context.log.info(f"incremental refresh of {'/'.join(primary)}[{day}]: {len(files)} new file(s), {len(keys)} key(s)")
    return KeyedRefresh(tuple(files), tuple(keys))


def day_rows(df: "DataFrame", day: dt.date) -> "DataFrame":
    from pyspark.sql import functions as F

    return df.where(F.col(PARTITION_COLUMN) == F.lit(day))
