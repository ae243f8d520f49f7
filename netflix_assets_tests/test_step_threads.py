"""The step_threads executor (`netflix_assets/step_threads.py`) on toy graphs, no Spark: ready steps run
at once, a failed blocking check still stops what is below it, a failed step fails the run after the
steps running beside it have ended. The end-to-end tests run the graph on it (`lakehouse.Lakehouse.run`
and `sensor_runs.launch`, the crash points' killed runs), and test_table_digests.py compares the bundled
run's tables with the checked-in digests."""

from __future__ import annotations

import threading

import dagster as dg

from netflix_assets.step_threads import execute_in_process, step_threads_executor

BARRIER = threading.Barrier(2, timeout=20)


@dg.asset
def left() -> int:
    BARRIER.wait()  # returns only if `right` runs at the same time
    return 1


@dg.asset
def right() -> int:
    BARRIER.wait()
    return 2


@dg.asset
def below(left: int, right: int) -> int:
    return left + right


@dg.asset_check(asset=left, blocking=True)
def left_is_two(left: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=left == 2)


@dg.asset
def broken() -> int:
    raise ValueError("broken on purpose")


def _job(*assets, checks=()) -> dg.JobDefinition:
    defs = dg.Definitions(
        assets=list(assets), asset_checks=list(checks),
        jobs=[dg.define_asset_job("all", executor_def=step_threads_executor)],
    )
    return defs.resolve_job_def("all")


def test_ready_steps_run_at_once_and_a_failed_blocking_check_stops_what_is_below():
    BARRIER.reset()
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(_blocked_job), instance, raise_on_error=False)
        assert not result.success
        steps = {e.step_key: e.event_type for e in result.all_events if e.step_key and e.is_step_event
                 and e.event_type in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
                                      dg.DagsterEventType.STEP_FAILURE)}
    assert steps["left"] == steps["right"] == dg.DagsterEventType.STEP_SUCCESS, "both passed the barrier"
    assert steps["left_left_is_two"] == dg.DagsterEventType.STEP_FAILURE
    assert "below" not in steps, "never started, as with Dagster's in-process executor"


def test_a_failed_step_fails_the_run_after_the_steps_beside_it():
    with dg.instance_for_test() as instance:
        result = dg.execute_job(dg.reconstructable(_broken_job), instance, raise_on_error=False)
        assert not result.success
        events = {(e.step_key, e.event_type) for e in result.all_events if e.step_key}
    assert ("broken", dg.DagsterEventType.STEP_FAILURE) in events
    assert ("alone", dg.DagsterEventType.STEP_SUCCESS) in events


def test_execute_in_process_keeps_the_jobs_executor_its_selection_and_tags():
    """Dagster's `execute_in_process` would run `left` and `right` one after the other: the barrier
    would time out."""
    BARRIER.reset()
    job = _job(left, right, below, alone)
    with dg.instance_for_test() as instance:
        result = execute_in_process(job, instance=instance, asset_selection=[dg.AssetKey("left"), dg.AssetKey("right"),
                                                                             dg.AssetKey("below")], tags={"who": "test"})
        assert result.success
        assert result.dagster_run.tags["who"] == "test"
        assert {e.asset_key.path[0] for e in result.get_asset_materialization_events()} == {"left", "right", "below"}
        assert result.output_for_node("below") == 3


@dg.asset
def alone() -> int:
    return 3


def _blocked_job() -> dg.JobDefinition:
    return _job(left, right, below, checks=[left_is_two])


def _broken_job() -> dg.JobDefinition:
    return _job(broken, alone)
