"""How much of the machine one run of the graph leaves idle: whole runs on one warm session, two
one after the other against two at once (each in its own thread, on its own lake).

    python -m benchmarks.concurrent_runs [--rounds 3] [--step-threads | --threads 2,3,4]

Each round builds four lakes of the bundled data (today's partition, `lakehouse_job`, every asset
and check), runs two of them one after the other and the other two at once, all on the one
SparkSession of this process. Prints one JSON line per round. The first round meets a cold JIT:
compare the later ones, nothing else running. If two at once take much less than two in a row,
a run's steps leave cores idle, and running a run's independent steps at once would use them.

With `--step-threads`, each round runs two lakes instead, one with its steps one at a time (Dagster's
`execute_in_process`) and one on the local executor, `NETFLIX_STEP_THREADS` ready steps at once in
threads (`step_threads.execute_in_process`), in alternating order, on the one session.
With `--threads 2,3,4`, each round runs one lake per count, each on the local executor with that many
steps at once (`NETFLIX_STEP_THREADS`), the order reversed every other round.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "netflix_assets" / "data" / "netflix_tutorial"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lookups", type=Path, default=TUTORIAL)
    parser.add_argument("--step-threads", action="store_true", help="one run one step at a time against one in threads")
    parser.add_argument("--threads", type=lambda v: [int(n) for n in v.split(",")], default=None,
                        help="one run per count of steps at once (NETFLIX_STEP_THREADS), e.g. 2,3,4")
    args = parser.parse_args(argv)

    from netflix_assets import step_threads

    from netflix_assets.definitions import build_definitions
    from netflix_assets.deployments import local_resources
    from netflix_assets.resources.http_source import HttpSourceResource
    from netflix_assets.resources.landing import LandingZoneResource

    scratch = Path(tempfile.mkdtemp(prefix="concurrent_runs_"))
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    http = HttpSourceResource(base_url=args.lookups.resolve().as_uri())

    def new_lake(threads: int | None = None) -> tuple[dg.JobDefinition, dg.DagsterInstance]:
        if threads is not None:  # read when the definitions are built (deployments.executor_for)
            os.environ["NETFLIX_STEP_THREADS"] = str(threads)
        lake = Path(tempfile.mkdtemp(dir=scratch))
        landing = LandingZoneResource(uri=str(lake / "raw" / "netflix_titles"), settle_seconds=0)
        landing.put_file(str(args.lookups / "netflix_titles.csv"), "netflix_titles.csv")
        defs = build_definitions(local_resources(lake_uri=str(lake), landing=landing, http_source=http))
        return defs.resolve_job_def("lakehouse_job"), dg.DagsterInstance.ephemeral()

    seconds: dict[int, float] = {}
    success: dict[int, bool] = {}

    def run(i: int, lake: tuple[dg.JobDefinition, dg.DagsterInstance]) -> None:
        job, instance = lake
        t0 = time.perf_counter()
        result = job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False, run_config=QUIET)
        seconds[i], success[i] = time.perf_counter() - t0, result.success

    def one_run(lake, threaded: bool) -> dict:
        job, instance = lake
        t0 = time.perf_counter()
        if threaded:
            result = step_threads.execute_in_process(job, partition_key=day, instance=instance, run_config=QUIET)
        else:
            result = job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False, run_config=QUIET)
        checks = result.get_asset_check_evaluations()
        return {"run_s": round(time.perf_counter() - t0, 1), "success": result.success, "checks": len(checks),
                "failed_checks": sum(not c.passed for c in checks)}

    try:
        for round_ in range(args.rounds):
            if args.threads:
                order = args.threads if round_ % 2 == 0 else args.threads[::-1]
                runs = {f"threads_{n}": one_run(new_lake(n), True) for n in order}
                print(json.dumps({"round": round_, "order": order, **runs}), flush=True)
                continue
            if args.step_threads:
                order = (False, True) if round_ % 2 == 0 else (True, False)
                runs = {("threads" if t else "one_at_a_time"): one_run(new_lake(), t) for t in order}
                print(json.dumps({"round": round_, "first": "threads" if order[0] else "one_at_a_time", **runs}), flush=True)
                continue
            lakes = [new_lake() for _ in range(4)]
            t0 = time.perf_counter()
            run(0, lakes[0])
            run(1, lakes[1])
            in_a_row = time.perf_counter() - t0
            threads = [threading.Thread(target=run, args=(i, lakes[i])) for i in (2, 3)]
            t0 = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            at_once = time.perf_counter() - t0
            print(json.dumps({
                "round": round_, "two_in_a_row_s": round(in_a_row, 1), "two_at_once_s": round(at_once, 1),
                "runs_s": [round(seconds[i], 1) for i in range(4)], "success": [success[i] for i in range(4)],
            }), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
