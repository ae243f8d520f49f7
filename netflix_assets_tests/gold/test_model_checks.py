"""The model checks' counts on hand-made partitions (no Dagster run)."""

import datetime as dt

from netflix_assets.gold.model_checks import DIM_TITLE, fact_matches_dim_title

DAY = dt.date(2024, 3, 1)


class _Reader:
    """Serves one hand-made partition per table key, as `TableReader.partition` does."""

    def __init__(self, tables):
        self.tables = tables

    def partition(self, key, day):
        assert day == DAY
        return self.tables[tuple(key)]


def test_fact_matches_dim_title_counts_both_sides_of_a_mismatch(spark):
    dim = spark.createDataFrame([("s1",), ("s2",), ("s3",), (None,)], "show_id string")
    fact = spark.createDataFrame([("s1",), ("s2",), ("s4",), ("s5",), ("s6",)], "show_id string")
    result = fact_matches_dim_title.evaluate(fact, DAY, _Reader({DIM_TITLE: dim}))
    assert not result.passed
    # s3 and the null show_id are missing from the fact (a null matches nothing); s4-s6 are extra.
    assert {k: v.value for k, v in result.metadata.items()} == {"missing": 2, "extra": 3}
    same = fact_matches_dim_title.evaluate(dim.where("show_id is not null"), DAY,
                                           _Reader({DIM_TITLE: dim.where("show_id is not null")}))
    assert same.passed and same.metadata["missing"].value == same.metadata["extra"].value == 0
