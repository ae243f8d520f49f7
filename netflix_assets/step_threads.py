"""An executor that runs a run's ready steps at once, each in a thread of the run's one process.

Why: a local run's steps share one SparkSession (in process or a Spark Connect client), and
Dagster's in-process executor runs them one at a time, while its multiprocess executor would start
a Python process and a session per step. One step at a time leaves about a third of two cores idle:
two whole runs at once on one warm session took 0.63-0.66 of two in a row, and the graph is wide
enough (a warm run's steps summed 67 s, its longest chain of dependent steps 21 s; BENCHMARKS.md,
"Two runs at once on one session"). Threads share the session, the resources and the instance.

What keeps this safe: Dagster's own `ActiveExecution` decides which steps are ready (inputs and
blocking checks done, the same skips after a failure) and sees every event, from this thread only;
the steps' threads only run `dagster_event_sequence_for_step` and hand their events over a queue.
Steps never write the same table (one step per table and its quarantine). Events are stored by the
thread that makes them, as in Dagster's in-process executor (the instance's storages lock).
A run terminated from the UI (Dagster's signal reaches this thread only: a step's thread cannot be
interrupted the way the in-process executor interrupts its step) launches no new step, interrupts the
Spark operations the session is running (`resources.spark.interrupt_operations`), so each running step
fails within a second or so, and ends CANCELED once they have, or after `TERMINATE_GRACE_S` if one
is still in plain Python: that thread then ends with the run's process, as in a killed run (every Delta
commit is atomic and a re-run converges: test_crash_points.py).

Dagster has no public API for this: it uses the same internals as its in-process executor
(`dagster._core.execution`), pinned with the dagster version in pyproject.toml; the toy-graph
tests (test_step_threads.py) and the whole-run digests (test_table_digests.py) catch a change.
`JobDefinition.execute_in_process` always runs steps one at a time, whatever the job's executor:
`execute_in_process` below is the same call that keeps the job's executor, for the demo, the
sensor's runs launched in process, the benchmarks and the tests.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from contextlib import ExitStack
from typing import Any, Iterator, Mapping, Optional, Sequence

import dagster as dg
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.api import ExecuteRunWithPlanIterable
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import PlanExecutionContextManager
from dagster._core.execution.plan.execute_plan import _trigger_hook, dagster_event_sequence_for_step
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster._core.execution.compute_logs import create_compute_log_file_key
from dagster._core.executor.base import Executor

from .resources.spark import interrupt_operations

_DONE = object()
NAME = "step_threads"
# How long a terminated run waits for its running steps to fail before it ends anyway: a Spark
# operation fails within about a second of its interruption (test_step_threads.py); a step in plain
# Python (a lookup pull) cannot be interrupted. Well under the 180 s that run monitoring gives a
# canceling run before it marks the run canceled itself (deploy/*/dagster.yaml).
TERMINATE_GRACE_S = 30.0


def _pump(key: str, step_context, events: "queue.Queue") -> None:
    try:
        for event in dagster_event_sequence_for_step(step_context):
            events.put((key, event))
    except BaseException:  # noqa: BLE001 (handed to the orchestrating thread, which raises it)
        events.put((key, sys.exc_info()[1]))
    finally:
        events.put((key, _DONE))


def threaded_plan_iterator(
    job_context: PlanExecutionContext,
    execution_plan: ExecutionPlan,
    instance_concurrency_context: Optional[InstanceConcurrencyContext] = None,
    *,
    max_concurrent: int = 2,
    terminate_grace_s: float = TERMINATE_GRACE_S,
) -> Iterator[DagsterEvent]:
    with ExitStack() as stack:
        concurrency = stack.enter_context(InstanceConcurrencyContext(job_context.instance, job_context.dagster_run))
        active = stack.enter_context(execution_plan.start(
            retry_mode=job_context.retry_mode,
            instance_concurrency_context=concurrency,
            step_dependency_config=job_context.step_dependency_config,
        ))
        # The process's output captured for the UI's compute logs, as the in-process executor does.
        compute_logs = job_context.instance.compute_log_manager
        log_key = compute_logs.build_log_key_for_run(job_context.run_id, create_compute_log_file_key())
        capture = stack.enter_context(compute_logs.capture_logs(log_key))
        yield DagsterEvent.capture_logs(
            job_context, [s.key for s in execution_plan.get_steps_to_execute_in_topo_order()], log_key, capture)
        events: queue.Queue = queue.Queue()
        running: dict[str, tuple[threading.Thread, object, list]] = {}
        stop_by: Optional[float] = None  # set when the run is terminated, or a step's thread raised
        error: Optional[BaseException] = None  # the first exception a step's thread raised
        raised: set[str] = set()
        while (stop_by is None and not active.is_complete) or running:
            if stop_by is None and active.check_for_interrupts():
                stop_by = time.monotonic() + terminate_grace_s
                active.mark_interrupted()
                yield DagsterEvent.engine_event(
                    job_context, f"Run terminated: no new step; interrupting the Spark work of {sorted(running)}",
                    EngineEventData.interrupted(sorted(running)))
                interrupt_operations()
            if stop_by is not None and time.monotonic() > stop_by:
                yield DagsterEvent.engine_event(
                    job_context, f"Steps {sorted(running)} still running {terminate_grace_s:.0f} s after the "
                    "termination: they end with this process", EngineEventData.interrupted(sorted(running)))
                break
            for step in active.get_steps_to_execute(limit=max_concurrent - len(running)) if stop_by is None else ():
                step_context = job_context.for_step(step, active.get_known_state())
                thread = threading.Thread(target=_pump, args=(step.key, step_context, events),
                                          name=f"step {step.key}", daemon=True)
                running[step.key] = (thread, step_context, [])
                thread.start()
            yield from active.concurrency_event_iterator(job_context)
            if not running:
                if not active.is_complete:
                    active.sleep_til_ready()
                continue
            try:
                key, item = events.get(timeout=0.5)
            except queue.Empty:
                continue
            thread, step_context, step_events = running[key]
            if item is _DONE:
                thread.join()
                del running[key]
                if key in raised:
                    continue
                active.verify_complete(job_context, key)
                for event in active.plan_events_iterator(job_context):
                    step_events.append(event)
                    yield event
                yield from _trigger_hook(step_context, step_events)
            elif isinstance(item, BaseException):
                # Raised out of Dagster's step machinery (raise_on_error, an event the storage
                # refused): the run ends with it, but as a terminated one does, so no step's thread
                # outlives the run (a sibling committing after the run ended FAILURE).
                raised.add(key)
                if error is None:
                    error = item
                    if running.keys() - raised:
                        yield DagsterEvent.engine_event(
                            job_context, f"Step {key} raised {type(item).__name__}: no new step; interrupting "
                            f"the Spark work of {sorted(running.keys() - raised)}", EngineEventData.interrupted(sorted(running)))
                        interrupt_operations()
                    stop_by = stop_by or time.monotonic() + terminate_grace_s
            else:
                step_events.append(item)
                yield item
                active.handle_event(item)
        if error is not None:
            raise error
        if stop_by is not None:
            raise dg.DagsterExecutionInterruptedError()


class StepThreadsExecutor(Executor):
    def __init__(self, retries: RetryMode, max_concurrent: int):
        self._retries = retries
        self.max_concurrent = max_concurrent

    @property
    def retries(self) -> RetryMode:
        return self._retries

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing up to {self.max_concurrent} steps at once in threads (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(os.getpid(), execution_plan.step_keys_to_execute),
        )

        def iterator(job_context, execution_plan):
            return threaded_plan_iterator(job_context, execution_plan, max_concurrent=self.max_concurrent,
                                          terminate_grace_s=TERMINATE_GRACE_S)

        yield from iter(
            ExecuteRunWithPlanIterable(
                execution_plan=plan_context.execution_plan,
                iterator=iterator,
                execution_context_manager=PlanExecutionContextManager(
                    job=plan_context.job,
                    retry_mode=plan_context.retry_mode,
                    execution_plan=plan_context.execution_plan,
                    run_config=plan_context.run_config,
                    dagster_run=plan_context.dagster_run,
                    instance=plan_context.instance,
                    raise_on_error=plan_context.raise_on_error,
                    output_capture=plan_context.output_capture,
                ),
            )
        )


@dg.executor(
    name=NAME,
    config_schema={
        "max_concurrent": dg.Field(int, default_value=2, description="Steps running at once."),
        "retries": get_retries_config(),
    },
)
def step_threads_executor(init_context) -> StepThreadsExecutor:
    config = init_context.executor_config
    return StepThreadsExecutor(RetryMode.from_config(config["retries"]), config["max_concurrent"])


def execute_in_process(
    job: dg.JobDefinition,
    *,
    instance: dg.DagsterInstance,
    partition_key: Optional[str] = None,
    run_config: Optional[Mapping[str, Any]] = None,
    tags: Optional[Mapping[str, str]] = None,
    asset_selection: Optional[Sequence[dg.AssetKey]] = None,
    raise_on_error: bool = False,
) -> dg.ExecuteInProcessResult:
    """`job.execute_in_process(...)` with the job's own executor when it is this one (Dagster's
    replaces any executor with its one-step-at-a-time executor); the same arguments, tags and result."""
    if job.executor_def.name != NAME:
        return job.execute_in_process(partition_key=partition_key, run_config=run_config, tags=tags,
                                      asset_selection=asset_selection, instance=instance, raise_on_error=raise_on_error)
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.execute_in_process import (
        core_execute_in_process, merge_run_tags, type_check_and_normalize_args,
    )

    run_config, _, selection, _, partition_key, _ = type_check_and_normalize_args(
        run_config=run_config, partition_key=partition_key, asset_selection=asset_selection)
    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={}, asset_selection=selection)
    if not run_config and ephemeral.partitioned_config and partition_key:
        run_config = ephemeral.partitioned_config.get_run_config_for_partition_key(partition_key)
    return core_execute_in_process(
        job=InMemoryJob(job_def=ephemeral.with_executor_def(job.executor_def)),
        run_config=run_config,
        instance=instance,
        output_capturing_enabled=True,
        raise_on_error=raise_on_error,
        run_tags=merge_run_tags(job_def=job, partition_key=partition_key, tags=tags, asset_selection=selection,
                                instance=instance, run_config=run_config),
        asset_selection=frozenset(selection),
    )
