"""A model partition is advanced from its inputs' change feed only while what its last
materialization recorded still describes the tables (lib/changes.py); the feed of a keyed replace
holds exactly the rows it changed, and a table that does not record one cannot be read as one."""

import datetime as dt

import pytest
from pyspark.sql import functions as F

from netflix_assets.lib import delta
from netflix_assets.lib.changes import stale
from netflix_assets.lib.delta import TableState
from netflix_assets.transforms.changes import feed_rows

DAY = dt.date(2026, 1, 1)
SOURCES = {"titles": ("gold", "netflix_titles"), "ids": ("gold", "title_source_ids")}
NOW = {"titles": TableState("t", 7), "ids": TableState("i", 4)}
OWN = TableState("own", 3)
RECORDED = {"table": "own", "version": 3,
            "inputs": {"gold/netflix_titles": {"id": "t", "version": 5}, "gold/title_source_ids": {"id": "i", "version": 4}}}


def test_a_partition_is_advanced_only_from_what_its_last_materialization_recorded():
    assert stale(SOURCES, NOW, OWN, RECORDED) is None
    assert "unreadable" in stale(SOURCES, {**NOW, "ids": None}, OWN, RECORDED)
    assert "unreadable" in stale(SOURCES, NOW, None, RECORDED)
    assert "no materialization" in stale(SOURCES, NOW, OWN, None)
    # Another write of the table since (a backfill, a run whose materialization was lost), or the
    # table created again at its path.
    assert "written since" in stale(SOURCES, NOW, TableState("own", 4), RECORDED)
    assert "written since" in stale(SOURCES, NOW, TableState("new", 3), RECORDED)
    # An input created again (its versions start over), or older than what the table was built from.
    assert "gold/netflix_titles" in stale(SOURCES, {**NOW, "titles": TableState("t2", 9)}, OWN, RECORDED)
    assert "gold/netflix_titles" in stale(SOURCES, {**NOW, "titles": TableState("t", 4)}, OWN, RECORDED)
    # An input the materialization did not record (a table given a new input).
    partial = {**RECORDED, "inputs": {"gold/netflix_titles": RECORDED["inputs"]["gold/netflix_titles"]}}
    assert "gold/title_source_ids" in stale(SOURCES, NOW, OWN, partial)


def _rows(spark, pairs, source):
    return spark.createDataFrame([(s, v, source, DAY) for s, v in pairs],
                                 "show_id string, cast_name string, _source_file string, ingest_date date")


def test_the_feed_of_a_keyed_replace_holds_its_changes_and_a_table_without_one_refuses(spark, tmp_path):
    uri, end = str(tmp_path / "cast"), DAY + dt.timedelta(days=1)
    delta.write_partitions(_rows(spark, [("s1", "Ann"), ("s1", "Bob"), ("s2", "Cy"), ("s3", "Di")], "a.csv"),
                           uri, DAY, end, change_feed=True)
    first = delta.table_state(uri)
    # s1 lands again from a newer file: Bob leaves, Ann stays (a new provenance), Eve comes; s4 is new.
    delta.write_partitions(_rows(spark, [("s1", "Ann"), ("s1", "Eve"), ("s4", "Flo")], "b.csv"), uri, DAY, end,
                           narrower=delta.sql_in("show_id", ["s1", "s4"]), change_feed=True)
    now = delta.table_state(uri)
    assert (now.id, now.version) == (first.id, first.version + 1)
    feed = delta.change_feed(spark, uri, first.version, now.version, DAY)
    assert sorted(r["_change_type"] for r in feed.collect()) == ["delete", "delete", "insert", "insert", "insert"]
    net = {(r["show_id"], r["cast_name"]) for r in feed_rows(feed, ("show_id", "cast_name")).collect()}
    assert net == {("s1", "Bob"), ("s1", "Eve"), ("s4", "Flo")}
    assert feed_rows(feed, ("cast_name",)).where(F.col("cast_name") == "Ann").count() == 0

    plain = str(tmp_path / "plain")
    delta.write_partitions(_rows(spark, [("s1", "Ann")], "a.csv"), plain, DAY, end)
    delta.write_partitions(_rows(spark, [("s1", "Bob")], "b.csv"), plain, DAY, end)
    with pytest.raises(Exception, match="(?i)change data"):
        delta.change_feed(spark, plain, 0, 1, DAY).collect()
