"""A keyed replace of one partition (`lib.delta.write_partitions` with a `show_id IN (...)` narrower,
as a keyed refresh writes it) checked the project's way (`rows_within`: the predicate as a column,
a hashed IN list) against Delta's replaceWhere constraint check (the predicate as written).

    python -m benchmarks.replace_check [--rows 701300] [--keys 1000 20000] [--rounds 2]

One partition of `--rows` synthetic titles (the 1M lake's partition holds 701,300) is written once;
then each key count's replacement (that many stored show_ids, new values) is written in the two
modes, alternated (their order too), `--rounds` times; the first write pays a cold JIT. One JSON line per write. Nothing else should run beside it.
Figures: BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=701_300)
    parser.add_argument("--keys", type=int, nargs="+", default=[1000, 20_000])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from netflix_assets.lib import delta
    from netflix_assets.resources.spark import get_or_create_session

    spark = get_or_create_session(driver_memory="4g")
    day, next_day = dt.date(2026, 1, 1), dt.date(2026, 1, 2)

    def titles(ids, value):
        return ids.select(F.format_string("s%d", "id").alias("show_id"), F.lit(value).alias("description"),
                          F.lit(day).alias("ingest_date"))

    with tempfile.TemporaryDirectory() as tmp:
        uri = str(Path(tmp) / "titles")
        delta.write_partitions(titles(spark.range(args.rows), "stored"), uri, day, next_day)
        for keys in args.keys:
            step = max(1, args.rows // keys)
            ids = [i * step for i in range(keys)]
            narrower = delta.sql_in("show_id", [f"s{i}" for i in ids])
            new = titles(spark.createDataFrame([(i,) for i in ids], "id long"), "new")
            for round_ in range(args.rounds):
                for mode in ("project", "delta")[:: 1 if round_ % 2 == 0 else -1]:
                    spark.conf.set(delta.REPLACE_WHERE_CHECK, "true")  # write_partitions turns it off
                    started = time.perf_counter()
                    if mode == "project":
                        delta.write_partitions(new, uri, day, next_day, narrower=narrower)
                    else:  # the same replace, Delta's check only
                        delta.committed(lambda marker: new.write.format("delta").mode("overwrite")
                                        .option("replaceWhere", delta.partition_predicate(day, next_day, narrower))
                                        .partitionBy(delta.PARTITION_COLUMN).save(uri), uri)
                    seconds = time.perf_counter() - started
                    print(json.dumps({"rows": args.rows, "keys": keys, "predicate_chars": len(narrower), "round": round_,
                                      "check": mode, "seconds": round(seconds, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
