"""How this project lays out a new Delta table (no Dagster import: the baseline shares it)."""

from __future__ import annotations

from typing import Sequence

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
