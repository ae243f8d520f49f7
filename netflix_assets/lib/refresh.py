"""Incremental refresh of a partition that already exists: recompute only the keys that a
batch of new files touches, and replace exactly those keys' rows (one `replaceWhere` commit
per table), the way a Delta Live Tables / Auto Loader flow updates a table per micro-batch.

When: runs tagged `netflix/refresh=incremental`, which `landed_titles_job` carries (the
landing-zone sensor launches it per batch of new titles files once the day's lookup pulls are
in: only new titles files change). Every other run (`lakehouse_job`, a UI click, a backfill)
rebuilds whole partitions, which is also how a partition is repaired.

Which files are new is read from the data, not told by the run: every input row of silver
lands in silver or in its quarantine, and every silver row of D in gold[D] or its quarantine,
each keeping its `_source_file`; so a file is new for a table when its input rows outnumber
its rows in the table's outputs, counted per file; and a file the outputs hold that the input no
longer does (a lookup pulled again with other content: its copy is another file, `bronze/pulls.py`;
a file dropped from a rebuilt bronze day) makes the run rebuild the partition, since rows of keys
no new file touches may be stale. A run stopped between the two commits of a
table (silver written, its quarantine not yet) leaves the file's counts unequal, so the next
run recomputes it and both outputs converge; counting presence instead would call the file
done and leave its quarantine rows missing for good. Recomputing a file that was complete
rewrites the same rows, so a file counted new by mistake costs time, never correctness.

Why recomputing by key is exact: silver's dedup and gold's snapshot rule are per key (show_id),
so the rows of a key depend only on the input rows of that key. The recomputed input is every
row of the touched keys plus every row of the new files (rows without a key go to quarantine on
their own), and the same predicate selects the rows replaced in each output. For a silver lookup
the key's input rows include its titles records, listed or not: a record replaces the list of an
earlier one of its title, so every record of a new titles file touches its key, and a Kaggle file
with no list at all counts as new (`transforms.silver.kaggle_files_without_list`). Gold then holds
rows its input lost (a file's count shrinks): their keys are touched too (`rows_removed_from`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Optional, Sequence

import dagster as dg

from .delta import PARTITION_COLUMN, sql_in

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


def incremental_requested(context: dg.AssetExecutionContext) -> bool:
    return context.run.tags.get(REFRESH_TAG) == INCREMENTAL


def file_rows(frames: Sequence["DataFrame"]) -> "DataFrame":
    """(`_source_file`, `rows`) over `frames`: each frame's rows count 1, or `rows` when it has
    that column (counts computed without exploding, `transforms.silver.lookup_candidate_counts`)."""
    from pyspark.sql import functions as F

    union = None
    for df in frames:
        n = F.col("rows").cast("long") if "rows" in df.columns else F.lit(1).cast("long")
        df = df.select(SOURCE_FILE, n.alias("n"))
        union = df if union is None else union.unionByName(df)
    return union.where(F.col(SOURCE_FILE).isNotNull()).groupBy(SOURCE_FILE).agg(F.sum("n").alias("rows"))


class FileChanges(NamedTuple):
    new: list[str]  # more input rows than output rows
    gone: list[str]  # output rows and no input row left
    shrunk: list[str]  # fewer input rows than output rows, some left (a gold input's rows a later record replaced)


def new_files(inputs: Sequence["DataFrame"], outputs: Sequence["DataFrame"]) -> FileChanges:
    """The `_source_file`s whose input and output row counts differ (one Spark job)."""
    from pyspark.sql import functions as F

    ins = file_rows(inputs)
    outs = file_rows(outputs).withColumnRenamed("rows", "out_rows") if outputs else None
    if outs is None:
        return FileChanges(sorted(r[SOURCE_FILE] for r in ins.collect()), [], [])
    out_rows = F.coalesce(F.col("out_rows"), F.lit(0))
    unequal = ins.join(outs, SOURCE_FILE, "full").where(F.col("rows").isNull() | (out_rows != F.col("rows")))
    found = unequal.select(SOURCE_FILE, F.col("rows").isNull().alias("gone"), (out_rows > F.col("rows")).alias("shrunk")).collect()
    return FileChanges(
        sorted(r[SOURCE_FILE] for r in found if not r["gone"] and not r["shrunk"]),
        sorted(r[SOURCE_FILE] for r in found if r["gone"]),
        sorted(r[SOURCE_FILE] for r in found if r["shrunk"]),
    )


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
    rows_removed_from=None,
) -> Optional[KeyedRefresh]:
    """A keyed refresh of the partition, or None for a whole-partition rebuild.

    `primary`: the table whose partition must already hold `MIN_ROWS` rows (else: rebuild).
    `inputs` / `outputs`: the partition's input rows and output rows (`_source_file` each; an
    input frame may instead hold per-file counts, `_source_file` and `rows`).
    `rows_of_files(files)`: the input rows of those files, whose `key` values are the touched keys.
    `rows_removed_from(files)`: for a table whose input loses rows (gold: a later record of the day
    replaced a title's list, possibly with none), the output rows of those files their input no
    longer holds; their keys are touched too.
    """
    day = dt.date.fromisoformat(context.partition_key)
    if not incremental_requested(context):
        return None
    rows = reader.partition_rows(primary, day)
    if rows == 0 or rows < MIN_ROWS:  # a first build, or small enough to rebuild
        return None
    files, gone, shrunk = new_files(inputs, [o for o in outputs if o is not None])
    if gone:  # a lookup pulled again with other content, a file a rebuilt bronze day no longer holds
        context.log.info(f"{len(gone)} file(s) of the table's rows are no longer in its input "
                         f"({', '.join(gone[:3])}{' ...' if len(gone) > 3 else ''}): rebuilding the partition")
        return None
    if len(files) > MAX_FILES:
        context.log.info(f"{len(files)} new files: rebuilding the partition")
        return None
    keys = touched_keys(rows_of_files(files), key) if files else []
    if shrunk and rows_removed_from is not None:
        keys = sorted(set(keys) | set(touched_keys(rows_removed_from(shrunk), key)))
    if len(keys) > MAX_KEYS:
        context.log.info(f"{len(keys)} touched keys: rebuilding the partition")
        return None
    context.log.info(f"incremental refresh of {'/'.join(primary)}[{day}]: {len(files)} new file(s), {len(keys)} key(s)")
    return KeyedRefresh(tuple(files), tuple(keys))


def day_rows(df: "DataFrame", day: dt.date) -> "DataFrame":
    from pyspark.sql import functions as F

    return df.where(F.col(PARTITION_COLUMN) == F.lit(day))
