"""The dimensional model maintained from changes: which rows of a model table a change of its
inputs can move, and those rows recomputed, instead of the table rebuilt for every landed file.

Every model table is a function of its inputs whose rows each depend on the input rows of one
key only, so recomputing the table over the inputs restricted to a set of keys gives exactly the
table's rows of those keys, and replacing those rows (one keyed `replaceWhere`) leaves the table
equal to a full rebuild. The keys (`MAINTAINED`):

- a bridge's rows of a show_id come from that show_id's lookup rows and its title_source_ids row:
  the keys are the show_ids whose rows changed in any of them;
- a value dimension's row of a name (person, country, genre) exists while some lookup row names
  it: the keys are the values of the changed lookup rows, those removed as well as those added
  (a value no longer named anywhere loses its row);
- dim_title's and the fact's row of a title_key comes from the representative show_id's title
  row: the keys are the title_keys of the changed title_source_ids rows, before and after the
  change (a title gaining a source may change its representative; a show_id moving between titles
  changes two rows), and the title_key, in the current title_source_ids, of every show_id whose
  title row changed (its title_source_ids row is unchanged, or its old key is counted above).

A change is a row added or removed once the feed's inverse pairs cancel (`net_rows`): a keyed
refresh upstream rewrites every row of a touched show_id, and a whole-partition rebuild every
row of the day, most of them unchanged; only the columns a model table reads are compared, so a
title that came again in a newer file with the same attributes changes nothing downstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import Callable, Collection, Mapping, Optional

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from . import dimensional as d

CHANGE_TYPE = "_change_type"
ADDED = ("insert", "update_postimage")
REMOVED = ("delete", "update_preimage")
TITLE_KEY, SHOW_ID = "title_key", "show_id"


def net_rows(added: DataFrame, removed: DataFrame, columns: Collection[str]) -> DataFrame:
    """`columns` of the rows added more often than removed, or removed more often than added (a
    multiset difference both ways, in one aggregation: a row rewritten unchanged cancels)."""
    signed = added.select(*columns, F.lit(1).alias("_net")).unionByName(removed.select(*columns, F.lit(-1).alias("_net")))
    return signed.groupBy(*columns).agg(F.sum("_net").alias("_net")).where(F.col("_net") != 0).drop("_net")


def feed_rows(feed: DataFrame, columns: Collection[str]) -> DataFrame:
    """`net_rows` of a change data feed (`lib.delta.change_feed`)."""
    return net_rows(feed.where(F.col(CHANGE_TYPE).isin(*ADDED)), feed.where(F.col(CHANGE_TYPE).isin(*REMOVED)), columns)


@dataclass(frozen=True)
class Maintained:
    """A model table kept by key: `build` is its full rule over its inputs (by argument name);
    `reads[input]` are the columns of that input the rule reads (a change elsewhere in a row moves
    nothing here), the first one the column whose values are keys of the table (`column`), or
    show_id for a table keyed by title_key (mapped through title_source_ids, the input `ids`)."""

    column: str
    build: Callable[..., DataFrame]
    reads: Mapping[str, tuple[str, ...]]

    def _mapped(self, name: str) -> bool:
        return self.column == TITLE_KEY and self.reads[name][0] == SHOW_ID

    def keys_of(self, changed: Mapping[str, DataFrame], ids: Optional[DataFrame] = None) -> DataFrame:
        """One column, `key`: the keys whose rows a change can move (`changed[input]`: its net rows,
        `net_rows` over `reads[input]`); `ids`: the current title_source_ids, for a table keyed by
        title_key."""
        parts = []
        for name, rows in changed.items():
            column = self.reads[name][0]
            if self._mapped(name):
                rows, column = ids.join(rows.select(SHOW_ID).distinct(), SHOW_ID, "left_semi"), TITLE_KEY
            parts.append(rows.select(F.col(column).alias("key")))
        return reduce(DataFrame.unionByName, parts).where(F.col("key").isNotNull()).distinct()

    def rebuild_of(self, inputs: Mapping[str, DataFrame], keys: Collection) -> DataFrame:
        """The table's rows of `keys`: the full rule over the inputs restricted to them."""
        keys = list(keys)
        return self.build(**{
            name: df if self._mapped(name) else df.where(F.col(self.reads[name][0]).isin(keys))
            for name, df in inputs.items()
        })


TITLE_READS = (SHOW_ID, *sorted({*d.DIM_TITLE_COLUMNS, *d.FACT_COLUMNS} - {SHOW_ID, TITLE_KEY, "years_to_netflix"}))
IDS_BY_SHOW = (SHOW_ID, TITLE_KEY, "is_representative")
IDS_BY_TITLE = (TITLE_KEY, SHOW_ID, "is_representative")


def _bridge_value(value_column: str, dimension: str) -> Callable[..., DataFrame]:
    return lambda lookup, ids: d.bridge_title_value(lookup, value_column, dimension, ids)


# gold table -> how it is kept by key. Its inputs are named as its asset's arguments.
MAINTAINED: dict[str, Maintained] = {
    "dim_title": Maintained(TITLE_KEY, d.dim_title, {"titles": TITLE_READS, "ids": IDS_BY_TITLE}),
    "fact_title_added": Maintained(TITLE_KEY, d.fact_title_added, {"titles": TITLE_READS, "ids": IDS_BY_TITLE}),
    "bridge_title_person": Maintained(SHOW_ID, d.bridge_title_person, {
        "cast": (SHOW_ID, "cast_name"), "directors": (SHOW_ID, "director_name"), "ids": IDS_BY_SHOW}),
    "bridge_title_country": Maintained(SHOW_ID, _bridge_value("country", "country"),
                                       {"lookup": (SHOW_ID, "country"), "ids": IDS_BY_SHOW}),
    "bridge_title_genre": Maintained(SHOW_ID, _bridge_value("category", "genre"),
                                     {"lookup": (SHOW_ID, "category"), "ids": IDS_BY_SHOW}),
    # A name's row exists while any lookup row names it: whose row does not matter.
    "dim_person": Maintained("name", d.dim_person, {"cast": ("cast_name",), "directors": ("director_name",)}),
    "dim_country": Maintained("country", lambda countries: d.dim_value(countries, "country", "country"),
                              {"countries": ("country",)}),
    "dim_genre": Maintained("genre", lambda category: d.dim_value(category, "category", "genre"),
                            {"category": ("category",)}),
}
