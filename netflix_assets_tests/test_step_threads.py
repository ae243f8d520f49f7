"""The step_threads executor (`netflix_assets/step_threads.py`) on toy graphs, no Spark: ready steps run
at once, a failed blocking check still stops what is below it, a failed step fails the run after the
steps running beside it have ended, a terminated run (Dagster's SIGINT, as the UI's Terminate sends it)
interrupts its running steps' Spark work and ends CANCELED without waiting on a step that does not end.
The end-to-end tests run the graph on it (`lakehouse.Lakehouse.run`
and `sensor_runs.launch`, the crash points' killed runs), and test_table_digests.py compares the bundled
run's tables with the checked-in digests."""

from __future__ import annotations

import os
import signal
import threading
import time

import dagster as dg

from netflix_assets import step_threads
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


SIBLING_DONE = threading.Event()


@dg.asset
def slow_sibling() -> int:
    time.sleep(1.5)  # plain Python: finishes within the grace an escaping error gives it
    SIBLING_DONE.set()
    return 4


def test_an_error_raised_out_of_a_step_ends_the_run_only_once_the_step_beside_it_has():
    # With raise_on_error (or an event the storage refuses) the error escapes the step's machinery.
    # The run used to end FAILURE at once while the sibling's thread went on, committing after it.
    SIBLING_DONE.clear()
    with dg.instance_for_test() as instance:
        try:
            execute_in_process(_job(broken, slow_sibling), instance=instance, raise_on_error=True)
        except ValueError as error:
            assert "broken on purpose" in str(error)
        else:
            raise AssertionError("the step's error was not raised")
        assert SIBLING_DONE.is_set(), "the run ended before the step beside it"
        assert not [t.name for t in threading.enumerate() if t.name.startswith("step ")]


def _blocked_job() -> dg.JobDefinition:
    return _job(left, right, below, checks=[left_is_two])


def _broken_job() -> dg.JobDefinition:
    return _job(broken, alone)


# ------------------------------------------------------------------ termination

STARTED = threading.Barrier(3, timeout=20)  # the two running steps and the terminating thread
INTERRUPTED = threading.Event()  # what interrupting the session's Spark work does to `spark_like`
RELEASE = threading.Event()  # `stuck` ignores the interruption (plain Python) until the test ends


@dg.asset
def spark_like() -> int:
    STARTED.wait()
    if INTERRUPTED.wait(60):
        raise RuntimeError("OPERATION_CANCELED")  # what a Spark call raises when interrupted
    return 1


@dg.asset
def stuck() -> int:
    STARTED.wait()
    RELEASE.wait(60)
    return 2


@dg.asset
def waiting() -> int:  # ready from the start, but both threads are taken
    return 3


@dg.asset
def downstream(spark_like: int, stuck: int) -> int:
    return spark_like + stuck


def _terminate_when_started(instance: dg.DagsterInstance) -> threading.Thread:
    """What the UI's Terminate does to a run in its own process (DefaultRunLauncher.terminate, then the
    code server's `send_interrupt`): the run marked CANCELING, then SIGINT to the run's process."""
    def terminate():
        STARTED.wait()
        (run,) = instance.get_runs()
        instance.report_run_canceling(run)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=terminate, daemon=True)
    thread.start()
    return thread


def test_a_terminated_run_interrupts_its_steps_spark_work_and_ends_canceled_without_waiting_on_the_rest(monkeypatch):
    for event in (INTERRUPTED, RELEASE):
        event.clear()
    STARTED.reset()
    interrupts = []
    monkeypatch.setattr(step_threads, "interrupt_operations", lambda: interrupts.append(1) or INTERRUPTED.set())
    monkeypatch.setattr(step_threads, "TERMINATE_GRACE_S", 1.0)
    try:
        with dg.instance_for_test() as instance:
            _terminate_when_started(instance)
            t0 = time.monotonic()
            result = dg.execute_job(dg.reconstructable(_terminated_job), instance, raise_on_error=False)
            seconds = time.monotonic() - t0
            status = instance.get_run_by_id(result.run_id).status
            events = [(e.step_key, e.event_type) for e in result.all_events]
            messages = [e.message or "" for e in result.all_events]
            RELEASE.set()  # `stuck` ends and logs to the instance, which must still be there
            for thread in threading.enumerate():
                if thread.name == "step stuck":
                    thread.join(10)
    finally:
        RELEASE.set()
    assert status == dg.DagsterRunStatus.CANCELED
    assert interrupts == [1]
    assert ("spark_like", dg.DagsterEventType.STEP_FAILURE) in events, "its interrupted Spark call failed the step"
    assert not any(key == "stuck" and kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
                   for key, kind in events), "not waited for past the grace"
    assert any("['stuck'] still running" in m for m in messages)
    started = {key for key, kind in events if kind == dg.DagsterEventType.STEP_START}
    assert started == {"spark_like", "stuck"}, "nothing new starts after the termination"
    assert seconds < 20, "ended after the grace, not after `stuck`'s 60 s"


def interrupt_a_long_query(session) -> dict:
    """A query of minutes in another thread, then `interrupt_operations` until it has found it: what
    the query ended with, and whether the session still answers. Also run on Spark Connect
    (resources/test_spark_connect.py)."""
    from netflix_assets.resources.spark import interrupt_operations

    outcome: list = []

    def long_query():
        try:
            session.range(0, 10**11, numPartitions=2).selectExpr("sum(id * 7 % 13)").collect()
            outcome.append("finished")
        except Exception as err:  # noqa: BLE001
            outcome.append(type(err).__name__)

    thread = threading.Thread(target=long_query, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    interrupted: list[str] = []
    while not interrupted and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.5)
        interrupted = interrupt_operations()  # empty until the query has started
    thread.join(30)
    return {"interrupted": len(interrupted), "ended": not thread.is_alive(), "outcome": outcome,
            "answers_after": session.range(3).count() == 3}


def assert_interrupted(result: dict) -> None:
    assert result["interrupted"] >= 1 and result["ended"], result
    assert result["outcome"] and result["outcome"][0] != "finished", result
    assert result["answers_after"], result


def test_interrupting_the_session_fails_a_spark_query_running_in_a_step_thread(spark):
    """`interrupt_operations` on the suite's classic session: a long query in another thread ends with an error."""
    assert_interrupted(interrupt_a_long_query(spark))


def _terminated_job() -> dg.JobDefinition:
    return _job(spark_like, stuck, waiting, downstream)
