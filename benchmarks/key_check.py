"""What the key check (`transforms.quality.key_verdict`) costs by a hash of the key against by the key,
and what a write with its key check costs observed by the write against checked by a query after it.

    python -m benchmarks.key_check --lake .bench/lake_pipeline_1m [--reps 3]

The key checks are the dearest checks of a full run at 1M titles: every table's key is proved not
null and unique by an aggregation over all of its rows (5.7M rows in bridge_title_person).
`key_verdict` counts rows per 64-bit hash of the key and groups by the key itself only when a hash
repeats; `by_key` below is the same verdict grouping by the key columns, as the check did before.
Both run alternately on the same warm session over the largest keyed tables of the lake's newest
partition; their verdicts must agree. Then the partition is written to a scratch table whole, as
the IO manager writes it: once followed by the check's query (`key_verdict`), once observing the
key's counts in the write itself (`lib.delta.observe` with `transforms.quality.key_metrics`, the
product's way for a whole-partition write), alternated. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path

# The largest keyed tables of a full run, with their key (gold/model_checks.py, silver/checks.py).
TABLES = {
    "gold/bridge_title_person": ["show_id", "person_key", "role"],
    "silver/netflix_cast": ["show_id", "cast_name"],
    "gold/netflix_titles": ["show_id"],
}


def by_key(df, columns) -> tuple[int, int, int]:
    """(rows, null keys, duplicate keys) grouping by the key columns: the baseline."""
    from pyspark.sql import functions as F

    null_any = F.lit(False)
    for column in columns:
        null_any = null_any | F.col(column).isNull()
    groups = df.groupBy(*columns).agg(F.count(F.lit(1)).alias("n"))
    row = groups.agg(
        F.sum("n").alias("rows"), F.sum(F.when(null_any, F.col("n"))).alias("nulls"),
        F.count(F.when(~null_any, 1)).alias("distinct"),
    ).first()
    rows, nulls = int(row["rows"] or 0), int(row["nulls"] or 0)
    return rows, nulls, rows - nulls - int(row["distinct"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)

    from netflix_assets.lib.delta import observe, write_partitions
    from netflix_assets.resources.spark import get_or_create_session
    from netflix_assets.transforms.quality import key_metrics, key_verdict

    spark = get_or_create_session()
    out = {}
    for table, columns in TABLES.items():
        uri = str(args.lake / table)
        if not (args.lake / table / "_delta_log").exists():
            continue
        day = max(r[0] for r in spark.read.format("delta").load(uri).select("ingest_date").distinct().collect())
        df = spark.read.format("delta").load(uri).where(f"ingest_date = '{day}'")
        times = {"key": [], "hash": []}
        verdicts = set()
        by_key(df, columns)  # JIT and file cache warmed for both alike
        for rep in range(args.reps):
            for way in (("key", "hash") if rep % 2 == 0 else ("hash", "key")):
                t0 = time.perf_counter()
                if way == "key":
                    verdicts.add(by_key(df, columns))
                else:
                    v = key_verdict(df, columns)
                    verdicts.add((v.rows, v.null_keys, v.duplicate_keys))
                times[way].append(time.perf_counter() - t0)
        (rows, _, _), *_ = verdicts

        scratch = Path(tempfile.mkdtemp(prefix="key_check_"))
        end = day + dt.timedelta(days=1)
        writes = {"queried": [], "observed": []}
        for rep in range(args.reps + 1):  # the first pair warms the scratch tables: not counted
            for way in (("queried", "observed") if rep % 2 == 0 else ("observed", "queried")):
                uri = str(scratch / way)
                t0 = time.perf_counter()
                if way == "queried":
                    write_partitions(df, uri, day, end)
                    v = key_verdict(spark.read.format("delta").load(uri).where(f"ingest_date = '{day}'"), columns)
                    verdicts.add((v.rows, v.null_keys, v.duplicate_keys))
                else:
                    written, values = observe(df, key_metrics(columns), [columns])
                    write_partitions(written, uri, day, end)
                    got = values() or {}
                    verdicts.add((got.get("rows"), got.get("null_keys"), got.get("duplicate_keys")))
                if rep:
                    writes[way].append(time.perf_counter() - t0)
        shutil.rmtree(scratch, ignore_errors=True)
        out[table] = {"key": columns, "rows": rows, "by_key_s": statistics.median(times["key"]),
                      "by_hash_s": statistics.median(times["hash"]), "same_verdict": len(verdicts) == 1,
                      "write_then_query_s": statistics.median(writes["queried"]),
                      "write_observing_s": statistics.median(writes["observed"])}
    spark.stop()
    print(json.dumps({"reps": args.reps, "tables": out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
