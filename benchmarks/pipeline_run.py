"""One benchmark run of the real pipeline, in its own process (called by `benchmarks.bench`).

    python -m benchmarks.pipeline_run --titles-dir DIR --lookups DIR --lake DIR [--incremental FILE]

1. Lands every `*.csv` of `--titles-dir` in the lake's landing zone and materializes
   `lakehouse_job` (every asset and check) for today's partition in process, the way
   a run launched from the UI executes it: one local SparkSession, the job's executor (a run's
   ready steps in threads, `NETFLIX_STEP_THREADS`; 1: one step at a time).
2. With `--incremental FILE`: lands one more file, then ticks the landing-zone sensor
   and runs what it requests, timing from the drop to gold being rewritten. With
   `--incremental-only`, the lake is already built and step 1 is skipped: the process is
   then what the daemon launches for a sensor's run request.

The session is the deployment's (`NETFLIX_SPARK_REMOTE` set: a client of that Spark Connect
server, as a run under `make dev`; else this process's own JVM).

Prints one JSON line with the timings (whole runs and each step, from the event log)
and the row counts taken from the materializations (Delta commit metrics).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from pathlib import Path

import dagster as dg

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
GOLD = "gold/netflix_titles"


def _rows(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    rows = {}
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        count = mat.metadata.get("dagster/row_count")
        if count is not None:
            rows[mat.asset_key.to_user_string()] = count.value
    return rows


def _refresh_modes(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    """How many tables the run wrote in part (a bronze batch's files, a keyed refresh of
    `lib.refresh`) and how many it rewrote whole."""
    modes = {"incremental": 0, "full": 0}
    for event in result.get_asset_materialization_events():
        meta = event.event_specific_data.materialization.metadata
        mode = meta.get("refresh")
        partial = (mode is not None and mode.value == "incremental") or "replace_where" in meta
        modes["incremental" if partial else "full"] += 1
    return modes


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in (x.event_specific_data for x in result.all_events if x.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    """Wall seconds of each step of a run, from its event log (step start -> success or failure)."""
    started, seconds = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            seconds[event.step_key] = round(entry.timestamp - started.get(event.step_key, entry.timestamp), 3)
    return seconds


def _link_data_files(src: str, dst: str) -> None:
    """Copy a lake file, as a hard link where the writers never touch it again: a Delta data
    file is immutable (nothing vacuums here) and a landed file is never rewritten, while a
    `_delta_log` file can be replaced (`_last_checkpoint`), so the log is copied. The 1M lake
    (1.4 GB) then copies in well under a second instead of ~9 s."""
    if "_delta_log" in Path(src).parts:
        shutil.copy2(src, dst)
        return
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links refused
        shutil.copy2(src, dst)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles-dir", required=True, type=Path)
    parser.add_argument("--lookups", required=True, type=Path, help="folder serving the four lookup files")
    parser.add_argument("--lake", required=True, type=Path)
    parser.add_argument("--incremental", type=Path, help="one more titles file to drop after the full run")
    parser.add_argument("--incremental-only", action="store_true", help="the lake is built: skip the full run")
    parser.add_argument("--instance-dir", type=Path, help="a Dagster instance kept between processes (default: ephemeral)")
    args = parser.parse_args(argv)

    from netflix_assets.definitions import build_definitions
    from netflix_assets.deployments import local_resources
    from netflix_assets.resources.http_source import HttpSourceResource
    from netflix_assets.resources.landing import LandingZoneResource

    landing = LandingZoneResource(uri=str(args.lake / "raw" / "netflix_titles"), settle_seconds=0)
    resources = local_resources(
        lake_uri=str(args.lake), landing=landing, http_source=HttpSourceResource(base_url=args.lookups.resolve().as_uri())
    )
    defs = build_definitions(resources)
    # A sensor's run request reads what earlier runs recorded (the day's lookup pulls): a run in
    # another process than the full run needs the instance the full run wrote to.
    instance = dg.DagsterInstance.local_temp(str(args.instance_dir)) if args.instance_dir else dg.DagsterInstance.ephemeral()
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    out: dict = {"day": day}

    started = time.perf_counter()
    out["session"] = type(resources["spark"].get_session()).__module__
    out["session_start_s"] = time.perf_counter() - started
    if not args.incremental_only:
        full_run(args, defs, instance, landing, day, out)
    if args.incremental:
        incremental_run(args, defs, instance, landing, out)
    print(json.dumps(out), flush=True)
    return 0 if out.get("success", True) and out.get("incremental_success", True) else 1


def full_run(args, defs, instance, landing, day: str, out: dict) -> None:
    from netflix_assets import step_threads

    files = sorted(args.titles_dir.glob("*.csv"))
    t0 = time.perf_counter()
    for path in files:
        landing.put_file(str(path), path.name)
    out["land_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = step_threads.execute_in_process(
        defs.resolve_job_def("lakehouse_job"), partition_key=day, instance=instance, run_config=QUIET
    )
    out["full_run_s"] = time.perf_counter() - t0
    out["files"] = len(files)
    out["success"] = result.success
    out["rows"] = _rows(result)
    out["failed_checks"] = _failed_checks(result)
    out["steps"] = _step_seconds(instance, result.run_id)


def incremental_run(args, defs, instance, landing, out: dict) -> None:
    from netflix_assets import sensor_runs

    after_full = time.perf_counter()
    if not args.incremental_only:
        # The full run's lake is what the baseline is compared with: keep a copy before the drop
        # (not timed; Delta logs hold relative paths, so the copy is a valid lake).
        full = args.lake.with_name(args.lake.name + "_full")
        shutil.rmtree(full, ignore_errors=True)
        shutil.copytree(args.lake, full, copy_function=_link_data_files)
        out["full_lake"] = str(full)
    t0 = time.perf_counter()
    landing.put_file(str(args.incremental), f"zz_incremental_{args.incremental.name}")
    cursor, runs, tick_s = None, [], 0.0
    for _ in range(3):  # a new file is requested once it is seen unchanged (settle_seconds=0)
        t1 = time.perf_counter()
        tick = sensor_runs.tick(defs, instance, cursor)
        tick_s += time.perf_counter() - t1
        cursor = tick.cursor
        if tick.run_requests:
            runs = [sensor_runs.launch(defs, instance, r, QUIET) for r in tick.run_requests]
            break
    out["incremental_s"] = time.perf_counter() - t0
    out["incremental_tick_s"] = tick_s
    out["incremental_success"] = bool(runs) and all(r.success for r in runs)
    out["incremental_rows"] = _rows(runs[0]) if runs else {}
    out["incremental_job"] = runs[0].job_def.name if runs else None
    out["incremental_refresh"] = _refresh_modes(runs[0]) if runs else {}
    out["incremental_steps"] = _step_seconds(instance, runs[0].run_id) if runs else {}
    out["incremental_gold_updated"] = bool(runs) and GOLD in out["incremental_rows"]
    # What the process spent after the full run (lake copy, drop, tick, run): the caller takes
    # it out of the process's wall time, which then measures the full run alone.
    out["incremental_phase_s"] = time.perf_counter() - after_full


if __name__ == "__main__":
    sys.exit(main())
