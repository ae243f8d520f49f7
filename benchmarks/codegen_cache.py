"""What Spark's cache of compiled query code is worth to a warm session: the graph run again and
again in one session, with the cache at Spark's default size (100 classes) and at the project's.

    python -m benchmarks.codegen_cache [--entries default|N] [--runs 3]

Each run materializes `lakehouse_job` for today's partition of the bundled data in process, on the
same session, as a warm Spark Connect server or the test suite's session serves run after run.
Prints one JSON line per run: its seconds, how many classes Spark compiled during it (Spark's
`CodegenMetrics`), and the JVM's non-heap memory after it. Run it once per setting, nothing else
running, and compare the runs after the first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "netflix_assets" / "data" / "netflix_tutorial"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", default="project", help="'default' (Spark's 100), 'project', or a number")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lookups", type=Path, default=TUTORIAL)
    args = parser.parse_args(argv)

    from netflix_assets.resources import spark as spark_module

    key = "spark.sql.codegen.cache.maxEntries"
    if args.entries == "default":
        spark_module.LOCAL_SPARK_CONF.pop(key, None)
    elif args.entries != "project":
        spark_module.LOCAL_SPARK_CONF[key] = args.entries

    from netflix_assets.definitions import build_definitions
    from netflix_assets.deployments import local_resources
    from netflix_assets.resources.http_source import HttpSourceResource
    from netflix_assets.resources.landing import LandingZoneResource

    lake = Path(tempfile.mkdtemp(prefix="codegen_cache_"))
    landing = LandingZoneResource(uri=str(lake / "raw" / "netflix_titles"), settle_seconds=0)
    resources = local_resources(lake_uri=str(lake), landing=landing,
                                http_source=HttpSourceResource(base_url=args.lookups.resolve().as_uri()))
    defs = build_definitions(resources)
    instance = dg.DagsterInstance.ephemeral()
    spark = resources["spark"].get_session()
    jvm = spark.sparkContext._jvm  # a classic session: the metrics live in its JVM
    codegen = getattr(jvm.org.apache.spark.metrics.source, "CodegenMetrics$").__getattr__("MODULE$")
    memory = jvm.java.lang.management.ManagementFactory.getMemoryMXBean()
    landing.put_file(str(args.lookups / "netflix_titles.csv"), "netflix_titles.csv")
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    entries = spark.conf.get(key)
    for run in range(args.runs):
        compiled = codegen.METRIC_COMPILATION_TIME().getCount()
        t0 = time.perf_counter()
        result = defs.resolve_job_def("lakehouse_job").execute_in_process(
            partition_key=day, instance=instance, raise_on_error=False, run_config=QUIET)
        print(json.dumps({
            "cache_entries": entries, "run": run, "run_s": round(time.perf_counter() - t0, 1),
            "compilations": codegen.METRIC_COMPILATION_TIME().getCount() - compiled, "success": result.success,
            "non_heap_mb": round(memory.getNonHeapMemoryUsage().getUsed() / 2**20),
        }), flush=True)
    spark.stop()
    shutil.rmtree(lake, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
