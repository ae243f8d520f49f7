"""Checks computed by the write itself (`lib.checks.aggregate_check`, `key_check`): the write of a
whole partition observes its table's aggregate- and key-check metrics; the check step uses them only while the
write's commit is still the table's latest, and queries the table once anything committed since, or when its
run is tagged `netflix/checks=full` (`table_checks_job`, schedule `daily_full_checks`)."""

import datetime as dt


import dagster as dg
from deltalake import DeltaTable
from pyspark.sql import functions as F

from netflix_assets import definitions
from netflix_assets.lib.checks import (
    AGGREGATES_FROM_KEY, CHECKS_TAG, FULL, OBSERVED_VALUES_KEY, Aggregates, metric_definitions, trusted_values,
    written_aggregates,
)
from netflix_assets.lib.refresh import REFRESH_TAG
from netflix_assets.transforms.quality import OUTSIDE_REPLACED, key_metrics, replaced_partition_metrics

from netflix_assets_tests.lakehouse import bronze_titles_lake, materialized

SILVER = dg.AssetKey(["silver", "netflix_titles"])
AGGREGATE_CHECKS = ("type_allowed", "release_year_in_range", "date_added_null_share", "show_id_not_null_unique")


def _check_events(result) -> dict[str, object]:
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION and e.event_specific_data.asset_key == SILVER
    }


def test_observed_values_serve_only_while_their_commit_is_the_tables_latest_and_their_sql_the_checks():
    sql = {"a__x": "count_if(x IS NULL)", "a__y": "count(1)", "b__z": "max(z)"}
    observed = {"delta_version": 4, "metrics": {"a__x": 0, "a__y": 2},
                "definitions": metric_definitions({n: sql[n] for n in ("a__x", "a__y")})}
    metadata = {OBSERVED_VALUES_KEY: dg.MetadataValue.json(observed)}
    wanted = lambda *names: {n: sql[n] for n in names}  # noqa: E731
    assert written_aggregates(metadata, wanted("a__x", "a__y"), 4) == Aggregates({"a__x": 0, "a__y": 2}, "the write (Delta version 4)")
    assert written_aggregates(metadata, wanted("a__x"), 5) is None, "a later commit may have changed the partition"
    assert written_aggregates(metadata, wanted("a__x", "b__z"), 4) == Aggregates({"a__x": 0}, "the write (Delta version 4)"), \
        "only what the write observed: the step queries the rest"
    assert written_aggregates(metadata, wanted("b__z"), 4) is None
    assert written_aggregates(metadata, wanted("a__x"), None) is None, "the log could not say the version"
    assert written_aggregates({}, wanted("a__x"), 4) is None
    # A deploy tightened the rule of a__x and kept its name: the value computed under the old SQL is not trusted.
    tightened = {"a__x": "count_if(x IS NULL OR x = '')", "a__y": "count(1)"}
    assert written_aggregates(metadata, tightened, 4) == Aggregates({"a__y": 2}, "the write (Delta version 4)")
    assert trusted_values(observed, tightened) == {"a__y": 2}
    assert trusted_values({"delta_version": 4, "metrics": {"a__x": 0}}, wanted("a__x")) == {}, "recorded without its SQL"


def test_the_daily_full_check_queries_yesterdays_tables_and_skips_a_day_without_any():
    defs = definitions.defs
    schedule = defs.resolve_schedule_def("daily_full_checks")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_job_def("table_checks_job").tags[CHECKS_TAG] == FULL
    tick = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.timezone.utc)
    with dg.instance_for_test() as instance:
        def evaluate():
            return schedule(dg.build_schedule_context(instance, scheduled_execution_time=tick,
                                                      repository_def=defs.get_repository_def()))
        assert isinstance(evaluate(), dg.SkipReason)
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=SILVER, partition="2026-11-24"))
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["gold", "dim_title"], partition="2026-11-23"))
        request = evaluate()
    # Only the checks of the tables the day has: a table never written would fail its checks for nothing.
    assert {k.asset_key for k in request.asset_check_keys} == {SILVER}
    assert {k.name for k in request.asset_check_keys} >= set(AGGREGATE_CHECKS)
    assert request.tags["dagster/partition"] == "2026-11-24" and request.run_key == "full-checks-2026-11-24"


KEY = key_metrics(["show_id", "name"])
METRICS = {"k__rows": KEY["rows"], "k__null_keys": KEY["null_keys"], "k__duplicate_keys": KEY["duplicate_keys"],
           "bad__rows": "count_if(type = 'Podcast')", "share__nulls": "count_if(date_added IS NULL)",
           "top__max": "max(release_year)"}


def test_a_keyed_refresh_derives_the_partitions_counts_that_were_zero_from_its_own_rows():
    """Kept rows are a subset of the previous ones and never share a show_id with the written rows."""
    previous = {"k__rows": 100, "k__null_keys": 0, "k__duplicate_keys": 0, "bad__rows": 0, "share__nulls": 3, "top__max": 2020}
    written = {"k__rows": 10, "k__null_keys": 0, "k__duplicate_keys": 1, "bad__rows": 2, "share__nulls": 1,
               "top__max": 2021, OUTSIDE_REPLACED: 0}
    derived = replaced_partition_metrics(METRICS, previous, written, 104, [["show_id", "name"]])
    # The duplicate and the two bad rows are the written rows' (the kept ones had none); a count that
    # was not 0 (nulls: which rows did the commit delete?) or a maximum cannot be derived.
    assert derived == {"k__rows": 104, "k__null_keys": 0, "k__duplicate_keys": 1, "bad__rows": 2}
    # The predicate selects by a column outside the key: kept and written rows may share a key.
    assert "k__duplicate_keys" not in replaced_partition_metrics(METRICS, previous, written, 104, [])
    assert replaced_partition_metrics(METRICS, previous, {**written, OUTSIDE_REPLACED: 1}, 104, [["show_id", "name"]]) == {}, \
        "a written row outside the replaced rows"
    assert replaced_partition_metrics(METRICS, None, written, 104, [["show_id", "name"]]) == {}, "no previous values"
    assert "k__rows" not in replaced_partition_metrics(METRICS, previous, written, None, [["show_id", "name"]])
    # Only a lone count is a count of rows: an expression of counts is not derived.
    exprs = {"diff": "count(1) - count(date_added)", "sum": "count_if(a) + count_if(b)",
             "quoted": "count_if(type NOT IN ('(', ')'))"}
    assert replaced_partition_metrics(exprs, {"diff": 0, "sum": 0, "quoted": 0},
                                      {"diff": 1, "sum": 1, "quoted": 1, OUTSIDE_REPLACED: 0}, 104) == {"quoted": 1}
    # A key whose number column's name starts another's is not taken for it.
    longer = {"d": key_metrics(["show_id", "name", "role"])["duplicate_keys"]}
    assert replaced_partition_metrics(longer, {"d": 0}, {"d": 0, OUTSIDE_REPLACED: 0}, 1, [["show_id", "name"]]) == {}


def test_the_write_computes_the_checks_and_a_later_commit_sends_them_back_to_the_table(spark, lookup_server, tmp_path, monkeypatch):
    from netflix_assets.lib import delta

    lake, day = bronze_titles_lake(tmp_path / "lake", lookup_server)
    silver_only = [SILVER, dg.AssetKey(["quarantine", "netflix_titles"])]

    # A write that loses a race on the table's schema once (another run added a column): its first
    # attempt ran the rows, and Spark keeps that attempt's observation. Nothing of it is recorded.
    real, lost = delta.committed, []

    def loses_once(write, uri, **kwargs):
        def first_attempt_loses(marker):
            write(marker)
            if uri.endswith("silver/netflix_titles") and not lost:
                lost.append(uri)
                raise RuntimeError("[DELTA_METADATA_CHANGED] MetadataChangedException: the metadata changed")
        return real(first_attempt_loses, uri, **{**kwargs, "sleep": lambda seconds: None})

    monkeypatch.setattr(delta, "committed", loses_once)
    retried = lake.run(day, asset_selection=silver_only, tags={REFRESH_TAG: "full"})
    monkeypatch.setattr(delta, "committed", real)
    assert retried.success and lost
    assert OBSERVED_VALUES_KEY not in materialized(retried)["silver/netflix_titles"]
    checks = _check_events(retried)
    for name in AGGREGATE_CHECKS:
        assert checks[name].passed and checks[name].metadata[AGGREGATES_FROM_KEY].value == "a query of the table", name

    result = lake.run(day, asset_selection=silver_only, tags={REFRESH_TAG: "full"})
    assert result.success
    written = materialized(result)["silver/netflix_titles"]
    version = written["delta_version"].value
    observed = written[OBSERVED_VALUES_KEY].value
    assert observed["delta_version"] == version
    rows = lake.rows("silver/netflix_titles", day)
    assert observed["metrics"]["date_added_null_share__rows"] == len(rows)
    assert observed["metrics"]["date_added_null_share__nulls"] == sum(r["date_added"] is None for r in rows)
    assert observed["metrics"]["type_allowed__bad_rows"] == 0
    assert observed["metrics"]["show_id_not_null_unique__duplicate_keys"] == 0
    assert observed["metrics"]["show_id_not_null_unique__rows"] == len(rows)
    assert "_key_number__show_id" not in rows[0], "the key numbers are observed, not written"
    checks = _check_events(result)
    for name in AGGREGATE_CHECKS:
        assert checks[name].passed, name
        assert checks[name].metadata[AGGREGATES_FROM_KEY].value == f"the write (Delta version {version})", name
    assert checks["date_added_null_share"].metadata["rows"].value == len(rows)

    # Another writer appends a title of an unknown type to the partition after the checked write.
    bad = spark.read.format("delta").load(str(lake.root / "silver/netflix_titles")).where(f"ingest_date = '{day}'").limit(1)
    bad = bad.withColumn("show_id", F.lit("s_podcast")).withColumn("type", F.lit("Podcast"))
    bad.write.format("delta").mode("append").save(str(lake.root / "silver/netflix_titles"))
    assert DeltaTable(str(lake.root / "silver/netflix_titles")).version() == version + 1

    job = dg.define_asset_job("silver_checks", selection=dg.AssetSelection.checks_for_assets(SILVER))
    defs = dg.Definitions.merge(lake.defs, dg.Definitions(jobs=[job]))
    # The partition as a run tag: a job of checks alone has no asset to take a partitions definition from.
    rechecked = defs.resolve_job_def("silver_checks").execute_in_process(
        tags={"dagster/partition": day}, instance=lake.instance, raise_on_error=False)
    checks = _check_events(rechecked)
    assert not checks["type_allowed"].passed
    assert checks["type_allowed"].metadata["bad_rows"].value == 1
    assert "s_podcast" in checks["type_allowed"].description
    for name in AGGREGATE_CHECKS:
        assert checks[name].metadata[AGGREGATES_FROM_KEY].value == "a query of the table", name
    assert checks["date_added_null_share"].metadata["rows"].value == len(rows) + 1

    # A wrong record: a write's values claim the table's latest commit had no bad type (a bug in what a
    # write observes or derives). The checks trust it; the full check, which queries, finds the row.
    wrong = {**observed, "delta_version": version + 1}
    lake.instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=SILVER, partition=day, metadata={OBSERVED_VALUES_KEY: dg.MetadataValue.json(wrong)}))
    trusted = _check_events(defs.resolve_job_def("silver_checks").execute_in_process(
        tags={"dagster/partition": day}, instance=lake.instance, raise_on_error=False))
    assert trusted["type_allowed"].passed
    assert trusted["type_allowed"].metadata[AGGREGATES_FROM_KEY].value == f"the write (Delta version {version + 1})"
    # As the daily schedule runs it: table_checks_job, its checks of the day's tables.
    full_job = defs.resolve_job_def("table_checks_job").get_subset(
        asset_selection=set(), asset_check_selection={dg.AssetCheckKey(SILVER, n) for n in AGGREGATE_CHECKS})
    full = _check_events(full_job.execute_in_process(
        tags={"dagster/partition": day}, instance=lake.instance, raise_on_error=False))
    assert set(full) == set(AGGREGATE_CHECKS)
    assert not full["type_allowed"].passed and "s_podcast" in full["type_allowed"].description
    for name in AGGREGATE_CHECKS:
        assert full[name].metadata[AGGREGATES_FROM_KEY].value == "a query of the table", name
