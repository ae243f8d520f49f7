"""`make demo`: land the bundled titles file, materialize today's partition, print what was built.

Runs through the Dagster instance in DAGSTER_HOME, so the run, its checks and
the materializations show up in the UI afterwards (`make dev`).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import dagster as dg

from .definitions import defs
from .resources.lake import LakeResource
from .resources.landing import LandingZoneResource

BUNDLED_TITLES = Path(__file__).resolve().parent / "data" / "netflix_tutorial" / "netflix_titles.csv"


def land_bundled_titles(landing: LandingZoneResource) -> str:
    """Drop the bundled file into the landing zone once; a second demo finds it there."""
    for landed in landing.list_files():
        if landed.uri.endswith("/netflix_titles.csv"):
            return landed.uri
    return landing.put_file(str(BUNDLED_TITLES), "netflix_titles.csv")


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
    failed = [e for e in evaluations if not e.passed]
    lines += [
        "",
        f"checks: {len(evaluations) - len(failed)} passed, {len(failed)} failed",
        *[f"  FAILED {e.asset_key.to_user_string()}:{e.check_name} ({e.severity.value})" for e in failed],
        f"quarantined rows (incl. duplicates): {quarantined}",
        f"lake: {lake.root_uri}",
        "open the UI: make dev  (then http://127.0.0.1:3000)",
    ]
    return "\n".join(lines)


def main() -> int:
    resources = defs.resources
    lake: LakeResource = resources["lake"]
    landing: LandingZoneResource = resources["landing"]
    landed = land_bundled_titles(landing)
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    print(f"landed {landed}; materializing every asset for {day} ...", flush=True)
    started = time.monotonic()
    job = defs.resolve_job_def("lakehouse_job")
    with dg.DagsterInstance.get() as instance:
        # Step events go to the instance (and the UI); the terminal gets warnings and the summary.
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        result = job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False, run_config=quiet)
    print(summarize(result, lake, time.monotonic() - started))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
