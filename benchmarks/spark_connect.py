"""What the warm Spark Connect server of `make dev` saves each run: time to first query from a fresh process.

    python -m benchmarks.spark_connect [--reps 3] [--table DELTA_DIR]

Runs launched from the UI are separate processes, and each starts its own JVM (`local`
deployment) unless it is a client of a long-lived Spark Connect server, as under `make dev`
(`netflix_assets/resources/spark_connect.py`, started once with Delta's jars), which leaves each
run only a gRPC connection. This measures both, alternately, in fresh Python processes:

- local: `get_or_create_session()` (the project's session: Delta jars, laptop conf) + a first
  query (`spark.range(10).count()`), then a Delta read of `--table` when given;
- connect: `SparkSession.builder.remote("sc://localhost:PORT/;token=...")` + the same queries.

The server listens on 127.0.0.1 only and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netflix_assets.resources import spark_connect

ROOT = Path(__file__).resolve().parents[1]

CLIENT = """
import json, os, sys, time
t0 = time.perf_counter()
mode, url, table = sys.argv[1], os.environ["BENCH_SPARK_REMOTE"], sys.argv[2]
if mode == "local":
    from netflix_assets.resources.spark import get_or_create_session
    spark = get_or_create_session()
else:
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.remote(url).getOrCreate()
t1 = time.perf_counter()
spark.range(10).count()
t2 = time.perf_counter()
rows = spark.read.format("delta").load(table).count() if table else None
t3 = time.perf_counter()
print(json.dumps({"session_s": t1 - t0, "first_query_s": t2 - t0, "delta_read_s": t3 - t2 if table else None, "rows": rows}))
"""


def start_server(port: int) -> tuple[subprocess.Popen, float, str]:
    """The server `make dev` runs (`resources/spark_connect.py`); returns (process, seconds to ready, its URL)."""
    token = spark_connect.new_token()
    proc = spark_connect.start(port, Path(tempfile.mkdtemp(prefix="bench-spark-connect-")), token)
    return proc, spark_connect.wait_ready(proc, port), spark_connect.url(port, token)


def client(mode: str, url: str, table: str) -> dict:
    started = time.perf_counter()
    # The URL holds the server's token: in the environment, which only this user can read, not argv.
    out = subprocess.run([sys.executable, "-c", CLIENT, mode, table], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "BENCH_SPARK_REMOTE": url})
    if out.returncode != 0:
        raise RuntimeError(f"{mode} client failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def measure(reps: int = 3, table: str = "") -> dict:
    port = spark_connect.free_port()
    proc, ready_s, url = start_server(port)
    runs: dict[str, list[dict]] = {"local": [], "connect": []}
    try:
        client("connect", url, table)  # the server's own first query (JIT, Delta classes) is paid once
        for rep in range(reps):
            for mode in (("local", "connect") if rep % 2 == 0 else ("connect", "local")):
                runs[mode].append(client(mode, url, table))
    finally:
        spark_connect.stop(proc)

    def med(mode: str, field: str):
        values = [r[field] for r in runs[mode] if r.get(field) is not None]
        return statistics.median(values) if values else None

    return {
        "server_ready_s": ready_s,
        **{f"{mode}_{field}": med(mode, field) for mode in runs for field in ("process_s", "first_query_s", "delta_read_s")},
        "rows_equal": len({r["rows"] for rs in runs.values() for r in rs}) == 1,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--table", default="", help="a Delta table to read from both sessions")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.reps, args.table)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
