"""The later_days sensor on a toy graph with the product's rule (a step reading its input as of
its day), against a real Dagster event log: no Spark."""

import json

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.utils import make_new_run_id

from netflix_assets import later_days
from netflix_assets.io_managers.delta import LOAD_AS_OF, LOAD_MODE, READS_OWN_EARLIER_DAYS
from netflix_assets.lib.refresh import INCREMENTAL, REFRESH_TAG

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
D1, D2, D3 = "2026-01-01", "2026-01-02", "2026-01-03"
S, G, K, H = dg.AssetKey("s"), dg.AssetKey("g"), dg.AssetKey("k"), dg.AssetKey("h")
# Run tags the toy obeys: record a keyed refresh (of no key, for `s`); see day D1 of `s` change mid-step.
KEYED, NO_KEY, CHANGE_MID_STEP = "test/keyed", "test/no_key", "test/change_mid_step"


@dg.asset(key=S, partitions_def=DAYS)
def s(context: dg.AssetExecutionContext) -> dg.Output:
    return dg.Output(1, metadata={"refresh": "incremental", "refresh_keys": 0} if NO_KEY in context.run.tags else {})


@dg.asset(key=G, partitions_def=DAYS, ins={"s": dg.AssetIn(S, metadata={LOAD_MODE: LOAD_AS_OF})})
def g(context: dg.AssetExecutionContext, s: int) -> dg.Output:
    if CHANGE_MID_STEP in context.run.tags:  # a late run of D1 commits while this step runs
        context.instance.report_runless_asset_event(dg.AssetMaterialization(S, partition=D1))
    return dg.Output(s, metadata={"refresh": "incremental" if KEYED in context.run.tags else "full"})


@dg.asset(key=K, partitions_def=DAYS)
def k(g: int) -> int:
    return g


@dg.asset(key=H, partitions_def=DAYS, metadata={READS_OWN_EARLIER_DAYS: "the day before"})
def h() -> int:  # a history advancing from its own day before
    return 1


ASSETS = [s, g, k, h]
DEFS = later_days.build(ASSETS)
SENSOR = DEFS.resolve_sensor_def(later_days.SENSOR_NAME)


def _materialize(instance, keys, day, **tags):
    assert dg.materialize(ASSETS, selection=keys, partition_key=day, instance=instance, tags=tags).success


WHY: list[str] = []  # the last tick's skip message


def _tick(instance, cursor):
    with dg.build_sensor_context(instance=instance, cursor=cursor) as context:
        result = SENSOR(context)
    skipped = result if isinstance(result, dg.SkipReason) else result.skip_reason
    WHY[:] = [skipped.skip_message if skipped else ""]
    if isinstance(result, dg.SkipReason):
        return [], cursor
    return result.run_requests or [], result.cursor


def _run(instance, day, **tags):
    """A run of `day` in progress."""
    run = DagsterRun(job_name="lakehouse_job", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                     tags={"dagster/partition": day, **tags})
    instance.add_run(run)
    return run


def _asked(requests):
    return {(r.partition_key, tuple(k.to_user_string() for k in r.asset_selection), r.tags[later_days.CHANGED_DAYS_TAG])
            for r in requests}


@pytest.fixture(autouse=True)
def settled(monkeypatch):
    monkeypatch.setattr(later_days, "SETTLE_SECONDS", 0)


def test_a_change_to_an_earlier_day_rebuilds_the_later_days_that_read_it_before(monkeypatch):
    with dg.instance_for_test() as instance:
        requests, cursor = _tick(instance, None)  # the first tick starts at the event log's present
        for day in (D1, D2, D3):
            _materialize(instance, [S, G, K, H], day)
        requests, cursor = _tick(instance, cursor)
        assert requests == [] and cursor is not None  # every snapshot read its days' inputs as they are
        _materialize(instance, [S], D1, **{NO_KEY: "1"})  # a keyed refresh that changed nothing
        requests, cursor = _tick(instance, cursor)
        assert requests == []

        # D1's input changes (a re-queued file of D1): D2 and D3 read it before. Just recorded, or while
        # a run of D1 or a later day is queued or in progress, the change waits (the cursor stays before it).
        _materialize(instance, [S], D1)
        with monkeypatch.context() as patched:
            patched.setattr(later_days, "SETTLE_SECONDS", 3600)
            assert _tick(instance, cursor) == ([], cursor)
            assert "the change of 2026-01-01 (and any after it) waits: recorded less than 3600 s ago" in WHY[0]
        for day, why in ((D1, "a run of 2026-01-01, the day changed"), (D3, "a run rebuilding 2026-01-03")):
            run = _run(instance, day)  # its day's other changes come with it / it may read the change
            assert _tick(instance, cursor) == ([], cursor) and why in WHY[0]
            instance.report_run_canceled(run)  # the run ends
        keyed = _run(instance, D3, **{REFRESH_TAG: INCREMENTAL})  # the landing sensor's: not waited for
        requests, after = _tick(instance, cursor)
        instance.report_run_canceled(keyed)
        assert _asked(requests) == {(D2, ("g", "k"), D1), (D3, ("g", "k"), D1)}
        assert requests[0].run_key != requests[1].run_key
        assert {r.tags[later_days.LATER_DAYS_TAG] for r in requests} == {"rebuild"}  # one at a time (dagster.yaml)

        # A keyed refresh of D2 after the change does not rebuild what it did not touch: still stale.
        _materialize(instance, [G, K], D2, **{KEYED: "1"})
        assert _asked(_tick(instance, cursor)[0]) == {(D2, ("g", "k"), D1), (D3, ("g", "k"), D1)}

        # The rebuilds run (the requests as the daemon launches them): nothing more to do.
        for request in requests:
            _materialize(instance, request.asset_selection, request.partition_key)
        assert _tick(instance, after) == ([], after)

        # A change of the last day touches no later day; a later change of D2 touches D3 only.
        _materialize(instance, [S], D3)
        _materialize(instance, [S], D2)
        requests, after = _tick(instance, after)
        assert _asked(requests) == {(D3, ("g", "k"), D2)}

        # An asset built from its own day before (an incremental history): its later days follow it.
        _materialize(instance, [H], D2)
        assert _asked(_tick(instance, after)[0]) == {(D3, ("h",), D2)}


def test_a_snapshot_that_read_before_a_change_and_committed_after_it_is_rebuilt():
    """A run of D2 beside a late run of D1: D1's input commits while D2's step runs."""
    with dg.instance_for_test() as instance:
        _materialize(instance, [S, G, K], D1)
        _materialize(instance, [S], D2)
        requests, cursor = _tick(instance, None)
        assert requests == [] and json.loads(cursor)["after"] > 0  # history before the first tick is not looked at
        _materialize(instance, [G, K], D2, **{CHANGE_MID_STEP: "1"})
        # D1's change is stored before D2's snapshot, which started before it: stale all the same.
        requests, _ = _tick(instance, cursor)
        assert _asked(requests) == {(D2, ("g", "k"), D1)}


def test_the_product_rebuilds_every_snapshot_read_as_of_and_what_is_below_it():
    from netflix_assets.definitions import defs

    sensor = defs.resolve_sensor_def(later_days.SENSOR_NAME)
    assert sensor.job_name == later_days.JOB_NAME and sensor.default_status == dg.DefaultSensorStatus.RUNNING
    readers = later_days.read_as_of(defs.assets)
    assert {k.to_user_string(): sorted(key.to_user_string() for step in steps for key in step)
            for k, steps in readers.items()} == {
        "silver/netflix_titles": ["gold/netflix_titles", "quarantine/gold_netflix_titles"],
        **{f"silver/{t}": [f"gold/{t}"] for t in ("netflix_cast", "netflix_category", "netflix_countries", "netflix_directors")},
        **{f"gold/{t}": ["gold/dim_title_history"] for t in ("dim_title", "netflix_countries", "netflix_category",
                                                             "dim_title_history")},
    }
    job = defs.resolve_job_def(later_days.JOB_NAME)
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"gold/kpi_top_countries", "gold/dim_title_history", "serving/sql_catalog"} <= selected
    assert not any(k.startswith(("bronze/", "silver/")) for k in selected)
