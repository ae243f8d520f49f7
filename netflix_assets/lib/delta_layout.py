"""How this project lays out a new Delta table (no Dagster import: the baseline shares it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# The columns replace predicates filter on: a keyed refresh's show_id, a bronze batch's
# `_source_file`, the ledger's `path`. A new table keeps file statistics (min/max/null counts)
# on those only: Delta's default, the first 32 columns, computes min/max of every title,
# description and cast list at each write, and statistics on one column instead took 13 % off
# the baseline's 100k run (2 alternated pairs). `numRecords` is always kept: row counts come
# from it. A table with none of these columns keeps Delta's default.
STATS_COLUMNS = ("show_id", "_source_file", "path")


def new_table_options(columns: Sequence[str]) -> dict[str, str]:
    """Writer options that set a new Delta table's properties (an existing table keeps its own)."""
    present = [c for c in STATS_COLUMNS if c in columns]
    return {"delta.dataSkippingStatsColumns": ",".join(present)} if present else {}


def portable_types(df: "DataFrame") -> "DataFrame":
    """`df` with its string columns cast to the SQL type `string`, so that its table's schema is
    readable by Delta readers other than Spark (delta-rs: the sensor's ledger reads, the commit
    reads of `lib/delta_log.py`, the report; Synapse).

    Why: over Spark Connect (pyspark 4.2), a string type that the client sends as a Python
    `StringType()` (a `mapInArrow` output schema, `cast(StringType())`) reaches the server as an
    explicit `UTF8_BINARY` collation, and Delta writes it as `string collate UTF8_BINARY`, which
    delta-rs 1.6 refuses ("Unsupported Delta table type"); a type named in SQL is parsed by the
    server as the plain type (measured on both, one table each). Only top-level columns: no table
    here has a nested string type built on the client. On a classic session the casts change
    nothing and the optimizer removes them."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    def plain(f: "T.StructField"):
        column = F.col(f"`{f.name}`")
        if isinstance(f.dataType, T.StringType) and f.dataType.isUTF8BinaryCollation():
            return column.cast("string").alias(f.name, metadata=f.metadata)
        return column

    return df.select([plain(f) for f in df.schema.fields])
