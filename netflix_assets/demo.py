"""`make demo`: land the bundled titles file, let the landing-zone sensor request its run, print what was built.

Runs through the Dagster instance in DAGSTER_HOME, so the run, its checks and
the materializations show up in the UI afterwards (`make dev`).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import dagster as dg

from . import sensor_runs, step_threads
from .definitions import defs
from .lib import clock
from .resources.lake import LakeResource
from .resources.landing import LandingZoneResource

# Step events go to the instance (and the UI); the terminal gets the summary, which names what
# failed. The console logger's failure lines (a traceback, one "Not executing" line per skipped
# step) would bury it.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
BUNDLED_TITLES = Path(__file__).resolve().parent / "data" / "netflix_tutorial" / "netflix_titles.csv"
UI_URL = "http://127.0.0.1:3000"
LAYERS = ("raw", "bronze", "silver", "quarantine", "gold")
# Why the number of checks differs between the two jobs the sensor requests.
JOB_CHECKS_NOTE = {
    "lakehouse_job": "a day's first run also pulls the lookups; later files of the day run landed_titles_job, fewer checks",
    "landed_titles_job": "the day's lookups were already pulled: lakehouse_job, which also builds them, runs more checks",
}


def land_bundled_titles(landing: LandingZoneResource) -> str:
    """Drop the bundled file into the landing zone once; a second demo finds it there."""
    for landed in landing.list_files():
        if landed.uri.endswith("/netflix_titles.csv"):
            return landed.uri
    return landing.put_file(str(BUNDLED_TITLES), "netflix_titles.csv")


def _warning_detail(evaluation) -> str:
    orphans, pairs = evaluation.metadata.get("orphan_show_ids"), evaluation.metadata.get("pairs")
    if orphans is not None:
        return f"({orphans.value} show_ids of the lookups are not titles)"
    if pairs is not None:
        return f"({pairs.value} cross-source pairs wait for review in gold/title_match_review)"
    return ""


def one_line(text: str, width: int = 240) -> str:
    line = next((part.strip() for part in (text or "").splitlines() if part.strip()), "")
    return line if len(line) <= width else line[: width - 3] + "..."


def step_error(event: dg.DagsterEvent) -> str:
    """The first line of what a failed step raised: a `dg.Failure`'s description, else the
    innermost cause (Dagster wraps user errors in its own)."""
    data = event.event_specific_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return one_line(data.user_failure_data.description, 600)
    error = data.error
    while error is not None and error.cause is not None:
        error = error.cause
    message = error.message if error is not None else ""
    if "An error occurred while calling" in one_line(message):
        # py4j's first line names a JVM object; the JVM's exception is on the next one.
        message = "\n".join(message.splitlines()[1:]).lstrip(": ")
    return one_line(message)


def _tables(result: dg.ExecuteInProcessResult) -> tuple[list[str], int]:
    by_layer: dict[str, list[str]] = {}
    quarantined = 0
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        rows = mat.metadata.get("dagster/row_count")
        if rows is None:
            continue
        layer, table = mat.asset_key.path[0], mat.asset_key.path[-1]
        quarantined += rows.value if layer == "quarantine" else 0
        by_layer.setdefault(layer, []).append(f"{table} {rows.value:,}")
    lines = []
    for layer in sorted(by_layer, key=lambda name: LAYERS.index(name) if name in LAYERS else len(LAYERS)):
        wrapped = [""]
        for item in by_layer[layer]:  # whole "table rows" items, up to ~100 characters a line
            if wrapped[-1] and len(wrapped[-1]) + len(item) > 100:
                wrapped.append("")
            wrapped[-1] += f" · {item}" if wrapped[-1] else item
        lines += [f"  {layer if i == 0 else '':11}{part}" for i, part in enumerate(wrapped)]
    return lines, quarantined


def summarize(
    result: dg.ExecuteInProcessResult,
    lake: LakeResource,
    seconds: float,
    logged_warnings: Sequence[str] = (),
    planned_steps: Sequence[str] = (),
) -> str:
    """What a run built, from its own events: FAILED first (the failed steps and their errors,
    how many steps did not run, where to see the rest), else what was built and checked."""
    run = result.dagster_run
    day = run.tags.get("dagster/partition")
    evaluations = [
        e.event_specific_data for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed = [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    warned = [e for e in evaluations if not e.passed and e.severity != dg.AssetCheckSeverity.ERROR]
    tables, quarantined = _tables(result)
    job_checks = len(result.job_def.asset_layer.asset_graph.asset_check_keys)
    lines = []
    if not result.success:
        step_failures = result.get_step_failure_events()
        started = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
        lines += [f"FAILED: {run.job_name} for ingest_date={day} (run {run.run_id[:8]}) after {seconds:.0f}s"]
        lines += [f"  step {e.step_key} failed: {step_error(e)}" for e in step_failures]
        if not step_failures:
            lines += ["  the run failed before any step did (its events in the UI say why)"]
        not_run = len(planned_steps) - len(started)
        if not_run:
            lines += [f"  {not_run} step(s) not run: they need the output of a failed step"]
        lines += [f"  check failed: {e.asset_key.to_user_string()}:{e.check_name}" for e in failed]
        lines += [
            f"  the run's events and full errors: make dev, then {UI_URL}/runs/{run.run_id}",
            "tables written before it stopped:" if tables else "no table was written",
            *tables,
        ]
        return "\n".join(lines)
    lines += [
        f"Lakehouse built for ingest_date={day} by {run.job_name} (run {run.run_id[:8]}) in {seconds:.0f}s",
        "tables written (rows in the partition):",
        *tables,
        f"checks: {len(evaluations) - len(failed) - len(warned)} passed, {len(failed)} failed, {len(warned)} warnings: "
        f"the {job_checks} checks of the assets {run.job_name} builds",
        f"  ({JOB_CHECKS_NOTE[run.job_name]})" if run.job_name in JOB_CHECKS_NOTE else "",
        *[f"  FAILED {e.asset_key.to_user_string()}:{e.check_name}" for e in failed],
        *[f"  WARN   {e.asset_key.to_user_string()}:{e.check_name} {_warning_detail(e)}" for e in warned],
        *[f"  logged: {message}" for message in logged_warnings[:5]],
        f"quarantined rows (incl. duplicates): {quarantined:,}",
        f"lake: {lake.root_uri}",
        f"open the UI: make dev, then {UI_URL}/runs/{run.run_id}",
        "query it over JDBC (BI tools): make serve, then make sql Q='SELECT * FROM gold.kpi_top_countries LIMIT 5'",
    ]
    return "\n".join(line for line in lines if line)


def logged_warnings(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The warnings the run's steps logged (the console shows none of them, see QUIET)."""
    return [
        one_line(entry.user_message)
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is None and entry.level == logging.WARNING
    ]


def planned_steps(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    return [step.key for step in instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id).steps]


def ingest(instance: dg.DagsterInstance) -> list[dg.ExecuteInProcessResult]:
    """Tick the landing-zone sensor (as the daemon would every 30 s) until it has
    requested the new files, and run what it requests. A file just landed is
    requested on the tick after the one that first saw it (unchanged in between)."""
    cursor, results = None, []
    for _ in range(3):
        # The sensor's own line per tick is for the daemon's log; the demo prints a shorter one.
        tick = sensor_runs.tick(defs, instance, cursor, log_level=logging.WARNING)
        cursor = tick.cursor
        requested = len(tick.run_requests or [])
        print(f"sensor tick: {requested} run(s) requested" if requested else "sensor tick: nothing to request yet "
              "(a landed file is taken once it is unchanged between two ticks)", flush=True)
        for request in tick.run_requests or []:
            results.append(sensor_runs.launch(defs, instance, request, QUIET))
        if tick.run_requests:
            break
    return results


def main() -> int:
    resources = defs.resources
    lake: LakeResource = resources["lake"]
    landing: LandingZoneResource = resources["landing"]
    landed = land_bundled_titles(landing)
    print(f"landed {landed}", flush=True)
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        results = ingest(instance)
        if not results:
            # Nothing new (a second demo): rebuild today's partition from its files.
            day = clock.today().isoformat()
            print(f"nothing new in the landing zone; re-materializing {day} ...", flush=True)
            job = defs.resolve_job_def("lakehouse_job")
            results = [step_threads.execute_in_process(job, partition_key=day, instance=instance, run_config=QUIET)]
        seconds = time.monotonic() - started
        summaries = [
            summarize(r, lake, seconds, logged_warnings(instance, r.run_id), planned_steps(instance, r.dagster_run))
            for r in sorted(results, key=lambda r: r.success)
        ]
    print("\n\n".join(summaries), flush=True)
    return 0 if all(r.success for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
