"""The follow_upstream condition (`netflix_assets.automation`) on a toy graph of plain
partitioned assets (no Spark): a whole-job run in progress is not followed by a second run,
a genuine upstream update still is. Evaluated with Dagster's own evaluator
(`dg.evaluate_automation_conditions`), the runs really executed on a temporary instance."""

import threading
import time

import dagster as dg
import pytest
from dagster._core.definitions.declarative_automation.automation_condition_evaluator import (
    AutomationConditionEvaluator,
)
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.tags import SCHEDULE_NAME_TAG, SENSOR_NAME_TAG
from dagster._core.utils import make_new_run_id

from netflix_assets.automation import FOLLOW_UPSTREAM, WHOLE_JOB_SCHEDULE, WHOLE_JOB_SENSOR

TOY_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1)
WAIT = 300  # seconds: a blocked step never outlives a broken test by more than this; sized for a loaded machine
A, B, C = dg.AssetKey("a"), dg.AssetKey("b"), dg.AssetKey("c")
LANDING_SENSOR_RUN = {SENSOR_NAME_TAG: WHOLE_JOB_SENSOR}
SCHEDULE_RUN = {SCHEDULE_NAME_TAG: WHOLE_JOB_SCHEDULE}


def _toy(condition: dg.AutomationCondition, gates: dict[str, threading.Event]) -> dg.Definitions:
    """a -> b -> c, like gold/netflix_titles -> gold/dim_date -> a step still running after it;
    `whole_job` selects all three like landed_titles_job. b and c wait for their gate."""

    @dg.asset(partitions_def=TOY_PARTITIONS, automation_condition=condition)
    def a() -> None:
        pass

    @dg.asset(partitions_def=TOY_PARTITIONS, deps=[a], automation_condition=condition)
    def b() -> None:
        assert gates["b"].wait(WAIT)

    @dg.asset(partitions_def=TOY_PARTITIONS, deps=[b], automation_condition=condition)
    def c() -> None:
        assert gates["c"].wait(WAIT)

    return dg.Definitions(assets=[a, b, c], jobs=[dg.define_asset_job("whole_job", selection=[a, b, c])])


def _all(gates: dict[str, threading.Event], action) -> None:
    for gate in gates.values():
        action(gate)


def _materialized_by(instance: dg.DagsterInstance, key: dg.AssetKey, run_id: str) -> bool:
    event = instance.get_latest_materialization_event(key)
    return event is not None and event.run_id == run_id


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _requested(result) -> dict:
    return {key.to_user_string(): sorted(result.get_requested_partitions(key)) for key in (A, B, C)
            if result.get_num_requested(key)}


@pytest.mark.parametrize(
    ("name", "launcher"),
    [("eager", LANDING_SENSOR_RUN), ("follow_upstream", LANDING_SENSOR_RUN), ("follow_upstream", SCHEDULE_RUN)],
)
def test_a_whole_job_run_in_progress_is_not_followed_by_a_second_run(name, launcher, monkeypatch):
    condition = dg.AutomationCondition.eager() if name == "eager" else FOLLOW_UPSTREAM
    gates = {"b": threading.Event(), "c": threading.Event()}
    defs = _toy(condition, gates)
    job = defs.resolve_job_def("whole_job")
    day = TOY_PARTITIONS.get_last_partition_key()

    with dg.instance_for_test() as instance:
        # The day exists (a serial run), then the sensor starts evaluating.
        _all(gates, threading.Event.set)
        assert job.execute_in_process(instance=instance, partition_key=day).success
        _all(gates, threading.Event.clear)
        tick = dg.evaluate_automation_conditions(defs, instance)
        assert tick.total_requested == 0

        # The landing sensor's (or the schedule's) run of the whole job: a materialized, b running.
        run_id = make_new_run_id()
        worker = threading.Thread(
            target=job.execute_in_process,
            kwargs=dict(instance=instance, partition_key=day, run_id=run_id, tags=launcher),
        )
        worker.start()
        try:
            _wait_for(lambda: _materialized_by(instance, A, run_id), "a")
            run = instance.get_run_by_id(run_id)
            assert run.status == DagsterRunStatus.STARTED
            # No asset selection (None from the daemon, empty in process): executed_with_root_target is false.
            assert not run.asset_selection
            tick = dg.evaluate_automation_conditions(defs, instance, cursor=tick.cursor)
            assert _requested(tick) == {}  # b is in progress: both conditions wait

            # b's step ends while the next tick is being evaluated, after the tick prefetched its
            # asset records (as when the daemon's tick takes seconds on busy cores).
            prefetch = AutomationConditionEvaluator.prefetch

            def prefetch_then_b_finishes(self):
                prefetch(self)
                gates["b"].set()
                _wait_for(lambda: _materialized_by(instance, B, run_id), "b")

            with monkeypatch.context() as patched:
                patched.setattr(AutomationConditionEvaluator, "prefetch", prefetch_then_b_finishes)
                tick = dg.evaluate_automation_conditions(defs, instance, cursor=tick.cursor)
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED  # c still running
            if name == "eager":
                # The issue: b requested again while the run that just materialized it is going.
                assert _requested(tick) == {"b": [day]}
                return
            assert _requested(tick) == {}
        finally:
            _all(gates, threading.Event.set)
            # The run ends on its own once c's gate is open; on 2 busy cores (CI with a busy loop and
            # JVMs starting beside it) that took over 60 s once, so wait for the thread, not a clock.
            worker.join(WAIT)
        assert not worker.is_alive(), f"the run did not end within {WAIT} s of its gates opening"
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.SUCCESS

        # After the run: nothing to follow, twice (the run's own updates are not news).
        for _ in range(2):
            tick = dg.evaluate_automation_conditions(defs, instance, cursor=tick.cursor)
            assert _requested(tick) == {}

        # A genuine upstream update (a UI click materializing a alone) is still followed.
        assert dg.materialize(defs.assets, selection=[A], partition_key=day, instance=instance).success
        tick = dg.evaluate_automation_conditions(defs, instance, cursor=tick.cursor)
        assert _requested(tick) == {"b": [day], "c": [day]}  # c with b, in the same run


def test_a_run_of_part_of_the_graph_launched_by_another_sensor_is_followed():
    gates = {"b": threading.Event(), "c": threading.Event()}
    _all(gates, threading.Event.set)
    defs = _toy(FOLLOW_UPSTREAM, gates)
    job = defs.resolve_job_def("whole_job")
    day = TOY_PARTITIONS.get_last_partition_key()
    with dg.instance_for_test() as instance:
        assert job.execute_in_process(instance=instance, partition_key=day).success
        tick = dg.evaluate_automation_conditions(defs, instance)
        other = {SENSOR_NAME_TAG: "some_other_sensor"}
        assert job.execute_in_process(instance=instance, partition_key=day, asset_selection=[A], tags=other).success
        tick = dg.evaluate_automation_conditions(defs, instance, cursor=tick.cursor)
        assert _requested(tick) == {"b": [day], "c": [day]}


def test_the_whole_job_launchers_exist_and_launch_downstream_closed_jobs():
    from netflix_assets.definitions import build_definitions

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    launched = {
        *(target.job_name for target in defs.resolve_sensor_def(WHOLE_JOB_SENSOR).targets),
        defs.resolve_schedule_def(WHOLE_JOB_SCHEDULE).job_name,
    }
    assert launched == {"landed_titles_job", "lakehouse_job"}
    for job_name in launched:
        selected = set(defs.resolve_job_def(job_name).asset_layer.selected_asset_keys)
        downstream = {child for key in selected for child in graph.get(key).child_keys}
        assert downstream <= selected, job_name  # the run materializes every follower itself


def test_silver_and_gold_follow_upstream_with_this_condition():
    from netflix_assets.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    conditions = {key.to_user_string(): graph.get(key).automation_condition
                  for key in graph.materializable_asset_keys if key.path[0] in ("silver", "gold")}
    assert {"silver/netflix_titles", "gold/netflix_titles", "gold/dim_date", "gold/kpi_rating_mix"} <= set(conditions)
    assert all(c == FOLLOW_UPSTREAM for c in conditions.values()), conditions
    assert FOLLOW_UPSTREAM.is_serializable  # evaluated by the daemon, not the code server
