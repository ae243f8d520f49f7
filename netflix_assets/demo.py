"""`make demo`: land the bundled titles file, let the landing-zone sensor request its run, print what was built.

Runs through the Dagster instance in DAGSTER_HOME, so the run, its checks and
the materializations show up in the UI afterwards (`make dev`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import dagster as dg

from . import sensor_runs
from .definitions import defs
from .lib import clock
from .resources.lake import LakeResource
from .resources.landing import LandingZoneResource

# Step events go to the instance (and the UI); the terminal gets warnings and the summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
BUNDLED_TITLES = Path(__file__).resolve().parent / "data" / "netflix_tutorial" / "netflix_titles.csv"


def land_bundled_titles(landing: LandingZoneResource) -> str:
    """Drop the bundled file into the landing zone once; a second demo finds it there."""
    for landed in landing.list_files():
        if landed.uri.endswith("/netflix_titles.csv"):
            return landed.uri
    return landing.put_file(str(BUNDLED_TITLES), "netflix_titles.csv")


def _warning_detail(evaluation) -> str:
    orphans = evaluation.metadata.get("orphan_show_ids")
    return f"({orphans.value} show_ids of the lookups are not titles)" if orphans is not None else ""


def summarize(result: dg.ExecuteInProcessResult, lake: LakeResource, seconds: float) -> str:
    lines = [f"Lakehouse built for ingest_date={result.dagster_run.tags.get('dagster/partition')} in {seconds:.0f}s", ""]
    lines.append(f"{'table':42} {'rows':>8} {'delta v':>8}")
    quarantined = 0
    for event in result.get_asset_materialization_events():
        mat = event.event_specific_data.materialization
        key = mat.asset_key.to_user_string()
        rows = mat.metadata.get("dagster/row_count")
        version = mat.metadata.get("delta_version")
        if rows is None:
            continue
        if key.startswith("quarantine/"):
            quarantined += rows.value
        lines.append(f"{key:42} {rows.value:>8} {version.value if version else '':>8}")
    evaluations = [
        e.event_specific_data for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    failed = [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
    warned = [e for e in evaluations if not e.passed and e.severity != dg.AssetCheckSeverity.ERROR]
    lines += [
        "",
        f"checks: {len(evaluations) - len(failed) - len(warned)} passed, {len(failed)} failed, {len(warned)} warnings",
        *[f"  FAILED {e.asset_key.to_user_string()}:{e.check_name}" for e in failed],
        *[f"  WARN   {e.asset_key.to_user_string()}:{e.check_name} {_warning_detail(e)}" for e in warned],
        f"quarantined rows (incl. duplicates): {quarantined}",
        f"lake: {lake.root_uri}",
        "open the UI: make dev  (then http://127.0.0.1:3000)",
    ]
    return "\n".join(lines)


def ingest(instance: dg.DagsterInstance) -> list[dg.ExecuteInProcessResult]:
    """Tick the landing-zone sensor (as the daemon would every 30 s) until it has
    requested the new files, and run what it requests. A file just landed is
    requested on the tick after the one that first saw it (unchanged in between)."""
    cursor, results = None, []
    for _ in range(3):
        tick = sensor_runs.tick(defs, instance, cursor)
        cursor = tick.cursor
        print(f"sensor tick: {len(tick.run_requests or [])} run request(s)", flush=True)
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
            results = [job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False, run_config=QUIET)]
    for result in results:
        print(summarize(result, lake, time.monotonic() - started))
    return 0 if all(r.success for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
