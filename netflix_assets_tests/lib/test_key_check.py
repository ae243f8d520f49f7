"""The key check's counts on a hand-made partition (no Dagster run): queried, and observed by a write."""

import datetime as dt

from netflix_assets.lib.checks import Aggregates, key_check
from netflix_assets.lib.delta import observe

DAY = dt.date(2024, 3, 1)


def test_counts_rows_null_keys_and_duplicate_keys(spark):
    check = key_check(("gold", "bridge_title_person"), ["show_id", "person_key", "role"])
    rows = [("1", 7, "cast"), ("1", 7, "cast"), ("1", 7, "director"), ("2", 7, "cast"), (None, 7, "cast"),
            (None, 7, "cast"), ("3", None, "cast"), ("4", 8, "cast"), ("4", 8, "cast"), ("4", 8, "cast")]
    df = spark.createDataFrame(rows, "show_id string, person_key long, role string")
    written, values = observe(df, dict(check.metrics), check.numbered_keys)
    assert written.columns == df.columns and len(written.collect()) == len(rows)
    observed = Aggregates(values(), "the write")
    for aggregates, source in ((None, "a query of the table"), (observed, "the write")):
        result = check.evaluate(df, DAY, reader=None, known=(aggregates,))
        assert not result.passed
        meta = {k: v.value for k, v in result.metadata.items()}
        # 4 distinct non-null keys among 7 rows without a null: 3 duplicates.
        assert meta == {"rows": 10, "null_keys": 3, "duplicate_keys": 3, "aggregates_from": source}


def test_a_unique_key_passes_and_an_empty_partition_too(spark):
    check = key_check(("gold", "dim_title"), ["show_id"])
    unique = spark.createDataFrame([("1",), ("2",)], "show_id string")
    assert check.evaluate(unique, DAY, reader=None).passed
    empty = spark.createDataFrame([], "show_id string")
    result = check.evaluate(empty, DAY, reader=None)
    assert result.passed and result.metadata["rows"].value == 0
