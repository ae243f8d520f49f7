"""The snapshot rule of gold, and the parity columns."""

import datetime as dt

from pyspark.sql import functions as F

from netflix_assets.transforms import gold as g

from netflix_assets_tests.frames import D1, D2


def _silver_titles(spark, rows):
    return spark.createDataFrame(rows, "show_id string, title string, duration_minutes int, ingest_date date")


def test_snapshot_takes_each_show_from_its_latest_partition_up_to_d(spark):
    silver = _silver_titles(spark, [
        ("1", "v1", 90, D1), ("2", "only-d1", 100, D1),
        ("1", "v2", 95, D2), ("3", "new-d2", 80, D2),
    ])
    as_of_d1 = {r["show_id"]: r for r in g.snapshot_as_of(silver, D1).collect()}
    as_of_d2 = {r["show_id"]: r for r in g.snapshot_as_of(silver, D2).collect()}
    assert {k: v["title"] for k, v in as_of_d1.items()} == {"1": "v1", "2": "only-d1"}
    assert {k: v["title"] for k, v in as_of_d2.items()} == {"1": "v2", "2": "only-d1", "3": "new-d2"}
    assert {v["ingest_date"] for v in as_of_d2.values()} == {D2}
    assert as_of_d2["2"]["_version_date"] == D1


def test_a_newer_cast_list_replaces_the_older_list_whole(spark):
    silver = spark.createDataFrame(
        [("1", "Ann", "a.csv", D1), ("1", "Bob", "a.csv", D1), ("1", "Cid", "b.csv", D2), ("2", "Dee", "a.csv", D1)],
        "show_id string, cast_name string, _source_file string, ingest_date date",
    )
    rows = sorted((r["show_id"], r["cast_name"], r["_source_file"])
                  for r in g.gold_lookup(g.snapshot_as_of(silver, D2), "cast_name").collect())
    assert rows == [("1", "Cid", "b.csv"), ("2", "Dee", "a.csv")]


def test_duration_ranking_is_dense_descending_and_newflag_is_one(spark):
    snapshot = g.snapshot_as_of(
        _silver_titles(spark, [("1", "a", 90, D1), ("2", "b", 120, D1), ("3", "c", 90, D1), ("4", "d", 0, D1)]), D1
    )
    rows = {r["show_id"]: r for r in g.gold_titles(snapshot).collect()}
    assert {k: v["duration_ranking"] for k, v in rows.items()} == {"2": 1, "1": 2, "3": 2, "4": 3}
    assert {v["newflag"] for v in rows.values()} == {1}
    assert {v["_reason"] for v in rows.values()} == {None}


def test_expectation_failures_are_marked_for_quarantine(spark):
    snapshot = _silver_titles(spark, [(None, "x", 1, D1)]).withColumn("_version_date", F.col("ingest_date"))
    (row,) = g.gold_titles(snapshot).collect()
    assert row["_reason"] == "show_id_not_null"


def test_surrogate_keys_are_stable_across_partitions_and_runs(spark):
    from netflix_assets.transforms import dimensional as d

    def lookup(day, rows, column):
        return spark.createDataFrame(
            [(s, v, dt.date.fromisoformat(day)) for s, v in rows], f"show_id string, {column} string, ingest_date date"
        )

    first = d.dim_person(lookup("2026-11-01", [("1", "Ana")], "cast_name"), lookup("2026-11-01", [("2", "Bo")], "director_name"))
    later = d.dim_person(lookup("2026-11-20", [("9", "Bo"), ("9", "Ana")], "cast_name"),
                         lookup("2026-11-20", [], "director_name"))
    keys = lambda df: {r["name"]: r["person_key"] for r in df.collect()}  # noqa: E731
    assert keys(first) == keys(later)
    assert len(set(keys(first).values())) == 2
    ids = spark.createDataFrame([("9", 9, True)], "show_id string, title_key bigint, is_representative boolean")
    bridge = d.bridge_title_person(lookup("2026-11-20", [("9", "Bo")], "cast_name"),
                                   lookup("2026-11-20", [("9", "Bo")], "director_name"), ids)
    assert sorted((r["person_key"], r["role"]) for r in bridge.collect()) == [(keys(first)["Bo"], "cast"), (keys(first)["Bo"], "director")]


def test_dim_date_covers_the_date_added_range(spark):
    from netflix_assets.transforms import dimensional as d

    titles = spark.createDataFrame(
        [(dt.date(2019, 12, 30), dt.date(2026, 11, 24)), (dt.date(2020, 1, 2), dt.date(2026, 11, 24)), (None, dt.date(2026, 11, 24))],
        "date_added date, ingest_date date",
    )
    rows = d.dim_date(titles).orderBy("date").collect()
    assert [r["date"] for r in rows] == [dt.date(2019, 12, 30) + dt.timedelta(days=i) for i in range(4)]
    assert (rows[0]["year_month"], rows[-1]["quarter"], rows[0]["day_name"]) == ("2019-12", 1, "Monday")


def _ordered(spark, rows):
    """Silver titles with their ingest order: (show_id, title, duration_minutes, day, file)."""
    return spark.createDataFrame(
        [(s, t, m, d, dt.datetime.combine(d, dt.time(8)), f, 2) for s, t, m, d, f in rows],
        "show_id string, title string, duration_minutes int, ingest_date date, "
        "_ingested_at timestamp, _source_file string, _source_line int")


def test_a_keyed_refresh_of_gold_titles_equals_a_rebuild_and_reranks_only_when_durations_move(spark):
    """Show 1 was first ingested on D1: replaced on D2 (a later file of the day), it keeps that first
    record's place, in the refresh as in the rebuild (its title_key depends on it)."""
    before = _ordered(spark, [("1", "a", 90, D1, "d1.csv"), ("1", "a", 90, D2, "d2.csv"), ("2", "b", 100, D2, "d2.csv"),
                              ("3", "c", 80, D2, "d2.csv")])

    def rebuilt(silver):
        return g.served_and_dropped(g.gold_titles(g.snapshot_as_of(silver, D2, first=True)))

    served, dropped = rebuilt(before)
    for changed, reranked in ((("1", "a2", 90, D2, "e.csv"), False), (("1", "a3", 120, D2, "e.csv"), True)):
        replaced = (F.col("show_id") == "1") & (F.col("ingest_date") == D2)
        after = before.where(~replaced).unionByName(_ordered(spark, [changed]))
        done = g.refresh_gold_titles(after, ["1"], served, dropped, D2)
        try:
            assert done.reranked is reranked
            # Not re-ranked: only show_id 1's rows are new (the IO manager replaces them by key).
            got = done.served if reranked else served.where(F.col("show_id") != "1").unionByName(done.served)
            assert sorted(got.collect()) == sorted(rebuilt(after)[0].collect())
            assert done.dropped.count() == 0
            [one] = got.where(F.col("show_id") == "1").collect()
            assert (one["title"], one[g.FIRST_INGESTED]["_source_file"], one["_version_date"]) == (changed[1], "d1.csv", D2)
        finally:
            done.ranks.unpersist()
