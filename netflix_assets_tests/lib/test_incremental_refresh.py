"""Incremental refresh (`lib.refresh`) on the real Kaggle file: a batch of new files landed
into an existing partition updates silver and gold by the show_ids it touches, and the
result is row for row what a whole-partition rebuild of the same lake produces."""

import csv
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from netflix_assets.lib import refresh
from netflix_assets.lib.checks import AGGREGATES_FROM_KEY
from netflix_assets.lib.refresh import REFRESH_TAG
from netflix_assets.transforms.formats import LOOKUPS

from netflix_assets_tests.conftest import KAGGLE_TITLES, today_iso
from netflix_assets_tests.lakehouse import Lakehouse, materialized, unexpected_failures

FIRST_ROWS = 6000
# Tables a keyed refresh writes in part; the others are rebuilt whole by every run.
KEYED = [
    *(f"{layer}/{t}" for layer in ("silver", "quarantine", "gold") for t in ("netflix_titles", *LOOKUPS)),
    "quarantine/gold_netflix_titles",
]
COMPARED = [*KEYED, "gold/dim_title", "gold/bridge_title_person", "gold/kpi_top_people", "gold/kpi_rating_mix"]


def _kaggle_rows() -> tuple[list[str], list[dict]]:
    with open(KAGGLE_TITLES, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def _write(path: Path, header: list[str], rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _snapshot(lake: Lakehouse, day: str) -> dict[str, list[tuple]]:
    tables = {}
    for table in COMPARED:
        rows = DeltaTable(str(lake.root / table)).to_pyarrow_table().to_pylist()
        tables[table] = sorted(repr(sorted(r.items())) for r in rows if str(r["ingest_date"]) == day)
    return tables


def _land_and_refresh(lake: Lakehouse, source: Path, name: str) -> dg.ExecuteInProcessResult:
    lake.land(source, name)
    cursor = None
    for _ in range(3):  # a file is requested once seen unchanged (settle_seconds=0)
        tick = lake.tick(cursor)
        cursor = tick.cursor
        if tick.run_requests:
            [request] = tick.run_requests
            assert request.job_name == "landed_titles_job"
            return lake.launch(request)
    raise AssertionError("the sensor requested no run")


def test_a_small_partition_is_rebuilt_even_when_the_run_asks_for_a_refresh(spark, lookup_server, tmp_path):
    """Below MIN_ROWS a rebuild is cheaper: the same landed_titles_job run takes it."""
    header, rows = _kaggle_rows()
    day = today_iso()
    lake = Lakehouse.create(tmp_path / "lake", lookup_server)
    lake.land(_write(tmp_path / "a.csv", header, rows[:200]), "a.csv")
    assert lake.run(day, asset_selection=[dg.AssetKey(["bronze", "netflix_titles"]), dg.AssetKey(["quarantine", "bronze_netflix_titles"]),
                                          dg.AssetKey(["silver", "netflix_titles"]),
                                          dg.AssetKey(["quarantine", "netflix_titles"])]).success
    lake.land(_write(tmp_path / "b.csv", header, rows[200:300]), "b.csv")
    job = lake.defs.resolve_job_def("landed_titles_job")
    result = job.execute_in_process(partition_key=day, instance=lake.instance, raise_on_error=False,
                                    asset_selection=[dg.AssetKey(["bronze", "netflix_titles"]), dg.AssetKey(["quarantine", "bronze_netflix_titles"]),
                                                     dg.AssetKey(["silver", "netflix_titles"]),
                                                     dg.AssetKey(["quarantine", "netflix_titles"])])
    assert result.success and result.dagster_run.tags[REFRESH_TAG] == "incremental"
    meta = materialized(result)["silver/netflix_titles"]
    assert meta["refresh"].value == "full"
    assert meta["dagster/row_count"].value == 300


def test_a_file_the_outputs_hold_and_the_input_no_longer_does_rebuilds_the_partition(spark):
    """A lookup pulled again with other content is another file (its copy's folder is its hash,
    `bronze/pulls.py`): the rows of the pull it replaced are gone from bronze, so the partition is
    rebuilt rather than refreshed by key (counted per file alone, a pull of as many rows looked done,
    and the keys no new file touches kept the old pull's rows)."""
    from types import SimpleNamespace

    from pyspark.sql import functions as F

    api = "file:///lake/raw/api/netflix_cast/2026-11-24"
    old, new, titles = f"{api}/{'a' * 16}/netflix_cast.csv", f"{api}/{'b' * 16}/netflix_cast.csv", "file:///zone/t.csv"
    schema = "_source_file string, show_id string"
    bronze = spark.createDataFrame([(new, "s1"), (new, "s2"), (titles, "s3")], schema)
    silver = spark.createDataFrame([(old, "s1"), (old, "s2")], schema)
    assert refresh.new_files([bronze], [silver])[:2] == ([new, titles], [old])
    logged = []
    context = SimpleNamespace(partition_key="2026-11-24", run=SimpleNamespace(tags={REFRESH_TAG: "incremental"}),
                              log=SimpleNamespace(info=logged.append))
    reader = SimpleNamespace(partition_rows=lambda key, day: 10**6)

    def of_files(frame):
        return lambda files: frame.where(F.col("_source_file").isin(files))

    assert refresh.plan(context, reader, ("silver", "netflix_cast"), [bronze], [silver], of_files(bronze), F.col("show_id")) is None
    assert "no longer in its input" in logged[-1] and old in logged[-1]
    # The input still holding the old file's rows: a keyed refresh of the new files' keys.
    both = bronze.unionByName(silver)
    plan = refresh.plan(context, reader, ("silver", "netflix_cast"), [both], [silver], of_files(both), F.col("show_id"))
    assert (plan.files, plan.keys) == ((new, titles), ("s1", "s2", "s3"))


# The reference a refresh is compared with: the compared tables and what they are built from,
# rebuilt whole from the lake's bronze (the refresh's own bronze commit). No checks: the refresh
# run is the one under test, with its checks; the rebuild only produces the expected rows.
REBUILD = dg.AssetSelection.assets(*(dg.AssetKey(t.split("/")) for t in COMPARED)).upstream() - dg.AssetSelection.groups("raw", "bronze")


def _rebuild(lake: Lakehouse, day: str) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("rebuild_compared", selection=REBUILD.without_checks(), tags={REFRESH_TAG: "full"})
    defs = dg.Definitions.merge(lake.defs, dg.Definitions(jobs=[job]))
    return defs.resolve_job_def("rebuild_compared").execute_in_process(
        partition_key=day, instance=lake.instance, raise_on_error=False)


@pytest.fixture(scope="module")
def lake(spark, lookup_server, tmp_path_factory, request):
    # The real file is far below the size where a keyed refresh pays off: take it at any size.
    patch = pytest.MonkeyPatch()
    patch.setattr(refresh, "MIN_ROWS", 0)
    request.addfinalizer(patch.undo)
    day = today_iso()
    folder = tmp_path_factory.mktemp("inputs")
    header, rows = _kaggle_rows()
    lake = Lakehouse.create(tmp_path_factory.mktemp("lake"), lookup_server)
    lake.land(_write(folder / "first.csv", header, rows[:FIRST_ROWS]), "first.csv")
    result = lake.run(day)
    assert result.success and unexpected_failures(result) == []
    return lake, day, folder, header, rows


def _assert_refresh_equals_rebuild(lake: Lakehouse, day: str, result: dg.ExecuteInProcessResult) -> dict:
    assert result.success and unexpected_failures(result) == []
    mats = materialized(result)
    for table in KEYED:
        assert mats[table]["refresh"].value == "incremental", table
    refreshed = _snapshot(lake, day)
    rebuilt_run = _rebuild(lake, day)
    assert rebuilt_run.success
    assert materialized(rebuilt_run)["silver/netflix_titles"]["refresh"].value == "full"
    rebuilt = _snapshot(lake, day)
    for table in COMPARED:
        assert len(refreshed[table]) == len(rebuilt[table]), table
        assert refreshed[table] == rebuilt[table], table
    return mats


def test_an_overlapping_batch_with_defects_refreshes_exactly_like_a_rebuild(lake):
    """The rest of the file plus 1,000 rows already loaded (latest wins), some edited (title, cast
    list), and records silver refuses: blank show_id, a bad type, a show_id with spaces."""
    lake, day, folder, header, rows = lake
    batch = [dict(r) for r in rows[FIRST_ROWS - 1000:]]
    for r in batch[:50]:
        r["title"] = r["title"] + " (Director's Cut)"
        r["cast"] = "New Actor, " + r["cast"] if r["cast"] else "New Actor"
    batch[60]["show_id"] = "  "
    batch[61]["type"] = "Podcast"
    batch[62]["show_id"] = f"  {batch[62]['show_id']} "
    # Records replacing a loaded one with a blank list: the older record's list leaves silver and gold.
    cleared = next(r for r in batch[63:] if r["cast"] and r["country"])
    cleared["cast"], cleared["country"] = "", ""
    result = _land_and_refresh(lake, _write(folder / "second.csv", header, batch), "second.csv")
    mats = _assert_refresh_equals_rebuild(lake, day, result)
    # Every show_id of the batch is touched, the blank one excepted.
    assert mats["silver/netflix_titles"]["refresh_keys"].value == len(batch) - 1
    assert mats["silver/netflix_titles"]["refresh_new_files"].value == 1
    # The partition's size (from the Delta log), not the rows this commit wrote.
    assert mats["silver/netflix_titles"]["dagster/row_count"].value == len(lake.rows("silver/netflix_titles", day))
    # One row per touched show_id, plus the rows Delta copies out of the files it rewrites.
    assert mats["silver/netflix_titles"]["rows_written"].value >= len(batch) - 1
    served = {r["show_id"]: r for r in lake.rows("gold/netflix_titles", day)}
    assert served[batch[0]["show_id"]]["title"].endswith("(Director's Cut)")
    # The keyed writes' own rows decided their tables' key and null checks, by induction from the
    # partition's previous values (`transforms.quality.replaced_partition_metrics`): no query.
    checks = {(e.event_specific_data.asset_key.to_user_string(), e.event_specific_data.check_name): e.event_specific_data
              for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    for table, check in [("silver/netflix_titles", "show_id_not_null_unique"), ("silver/netflix_titles", "type_allowed"),
                         ("silver/netflix_cast", "show_id_cast_name_not_null_unique"), ("gold/netflix_cast", "show_id_not_null")]:
        evaluation = checks[(table, check)]
        assert evaluation.passed, (table, check)
        source = evaluation.metadata[AGGREGATES_FROM_KEY].value
        assert source == f"the write (Delta version {mats[table]['delta_version'].value})", (table, check, source)
    assert checks[("silver/netflix_titles", "show_id_not_null_unique")].metadata["rows"].value == len(lake.rows("silver/netflix_titles", day))


def test_a_batch_with_a_new_duration_reranks_every_title(lake):
    lake, day, folder, header, rows = lake
    before = {r["show_id"]: r["duration_ranking"] for r in lake.rows("gold/netflix_titles", day)}
    longest = dict(rows[0], show_id="s990001", title="The Longest Film", duration="999 min", type="Movie")
    result = _land_and_refresh(lake, _write(folder / "third.csv", header, [longest]), "third.csv")
    mats = _assert_refresh_equals_rebuild(lake, day, result)
    assert mats["gold/netflix_titles"]["refresh_reranked"].value is True
    after = {r["show_id"]: r["duration_ranking"] for r in lake.rows("gold/netflix_titles", day)}
    assert after["s990001"] == 1
    assert all(after[k] == rank + 1 for k, rank in before.items())


def test_files_a_failed_run_left_behind_are_refreshed_by_the_next_batch(lake):
    """Batch A reaches bronze only (its run stopped there); batch B's refresh picks up both."""
    lake, day, folder, header, rows = lake
    lake.land(_write(folder / "fourth.csv", header, [dict(rows[1], show_id="s990002", title="Left Behind")]), "fourth.csv")
    cursor, request = None, None
    for _ in range(3):
        tick = lake.tick(cursor)
        cursor = tick.cursor
        if tick.run_requests:
            [request] = tick.run_requests
            break
    job = lake.defs.resolve_job_def(request.job_name)
    partial = job.execute_in_process(
        run_config=request.run_config, partition_key=day, instance=lake.instance, raise_on_error=False,
        asset_selection=[dg.AssetKey(["bronze", "netflix_titles"]), dg.AssetKey(["quarantine", "bronze_netflix_titles"])],
    )
    assert partial.success
    assert "s990002" not in {r["show_id"] for r in lake.rows("silver/netflix_titles", day)}
    # fifth.csv holds no director at all, and replaces a loaded title with one: the directors' refresh
    # must still touch that title (no candidate row of the file names it).
    directed = next(r for r in rows[3:FIRST_ROWS - 1000] if r["director"])
    fifth = [dict(rows[2], show_id="s990003", director=""), dict(directed, director="")]
    result = _land_and_refresh(lake, _write(folder / "fifth.csv", header, fifth), "fifth.csv")
    mats = _assert_refresh_equals_rebuild(lake, day, result)
    assert directed["show_id"] not in {r["show_id"] for r in lake.rows("gold/netflix_directors", day)}
    assert mats["silver/netflix_titles"]["refresh_new_files"].value == 2
    assert {"s990002", "s990003"} <= {r["show_id"] for r in lake.rows("gold/dim_title", day)}


def test_a_gold_titles_partition_from_before_first_ingested_is_rebuilt_not_refreshed_by_key(lake, spark):
    """A lake written before gold titles kept `_first_ingested`: after the column's schema evolution
    its partition holds nulls there, from which a keyed refresh would key merged titles. The run
    rebuilds gold titles whole (silver stays keyed) and every row gets its first record."""
    lake, day, folder, header, rows = lake
    spark.sql(f"UPDATE delta.`{lake.root / 'gold/netflix_titles'}` SET _first_ingested = NULL WHERE ingest_date = DATE'{day}'")
    upgraded = dict(rows[4], show_id="s990004", title="Upgraded")
    result = _land_and_refresh(lake, _write(folder / "sixth.csv", header, [upgraded]), "sixth.csv")
    assert result.success and unexpected_failures(result) == []
    mats = materialized(result)
    assert (mats["gold/netflix_titles"]["refresh"].value, mats["silver/netflix_titles"]["refresh"].value) == (
        "full", "incremental")
    served = lake.rows("gold/netflix_titles", day)
    assert "s990004" in {r["show_id"] for r in served}
    assert all(r["_first_ingested"] is not None for r in served)
