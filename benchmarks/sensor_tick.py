"""Benchmark: one landing-zone sensor tick with 10,000 files already landed (and
in the ledger) plus a few new ones, against the floor of any listing-based
discovery in the same run: a bare os.walk + stat of the same tree.

    python -m benchmarks.sensor_tick [--files 10000] [--new 10] [--repeat 5]

Prints the figures; exits 1 if the tick misses its target (TARGET_SECONDS).
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 2.0


def build_landing(root: Path, files: int, new: int) -> tuple[list[str], list[str]]:
    zone = root / "raw" / "netflix_titles"
    old, fresh = [], []
    for i in range(files + new):
        folder = zone / f"2026/{i // 1000:02}/{(i // 100) % 10:02}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"titles_{i:06}.csv"
        path.write_text("show_id,type,title,director,cast,country,date_added,release_year,rating,duration,listed_in,description\n")
        (old if i < files else fresh).append(f"file://{path}")
    return old, fresh


def write_ledger(lake_root: Path, paths: list[str]) -> None:
    """The ledger as bronze leaves it after ingesting `paths` (written with delta-rs: no JVM needed)."""
    import pyarrow as pa
    from deltalake import write_deltalake

    now = dt.datetime.now(dt.timezone.utc)
    n = len(paths)
    table = pa.table(
        {
            "path": paths,
            "size": [113] * n,
            "modified_at": [now] * n,
            "etag": [None] * n,
            "sha256": [f"{i:064x}" for i in range(n)],
            "discovered_at": [now] * n,
            "ingest_date": [now.date()] * n,
            "run_id": ["bench"] * n,
            "status": ["ingested"] * n,
            "duplicate_of": [None] * n,
        },
        schema=pa.schema(
            [
                ("path", pa.string()), ("size", pa.int64()), ("modified_at", pa.timestamp("us", "UTC")),
                ("etag", pa.string()), ("sha256", pa.string()), ("discovered_at", pa.timestamp("us", "UTC")),
                ("ingest_date", pa.date32()), ("run_id", pa.string()), ("status", pa.string()),
                ("duplicate_of", pa.string()),
            ]
        ),
    )
    write_deltalake(str(lake_root / "bronze" / "_ingested_files"), table, partition_by=["ingest_date"])


def walk_floor(zone: Path) -> int:
    seen = 0
    for folder, _, names in os.walk(zone):
        for name in names:
            os.stat(os.path.join(folder, name))
            seen += 1
    return seen


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import dagster as dg

    from netflix_assets import sensor_runs
    from netflix_assets.bronze import discovery
    from netflix_assets.bronze.sensors import claimed_paths
    from netflix_assets.definitions import build_definitions
    from netflix_assets.deployments import local_resources
    from netflix_assets.resources.landing import LandingZoneResource

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        old, fresh = build_landing(root, args.files, args.new)
        write_ledger(root, old)
        setup = time.perf_counter() - started
        landing = LandingZoneResource(uri=str(root / "raw" / "netflix_titles"), settle_seconds=0)
        resources = local_resources(lake_uri=str(root), landing=landing)
        defs = build_definitions(resources)
        lake = resources["lake"]

        with dg.DagsterInstance.ephemeral() as instance:
            tick_s, tick = timed(lambda: sensor_runs.tick(defs, instance), args.repeat)
        requested = [f for r in tick.run_requests for f in r.run_config["ops"]["bronze_netflix_titles"]["config"]["files"]]
        assert sorted(requested) == sorted(fresh), "the tick must request exactly the new files"

        floor_s, seen = timed(lambda: walk_floor(root / "raw" / "netflix_titles"), args.repeat)
        list_s, scanned = timed(landing.scan, args.repeat)
        ledger_s, claimed = timed(lambda: claimed_paths(lake), args.repeat)
        now = dt.datetime.now(dt.timezone.utc)
        decide_s, _ = timed(
            lambda: discovery.decide(scanned[0], scanned[1], claimed, discovery.Cursor(), now, 0, lambda k: None),
            args.repeat,
        )

    print(f"sensor tick benchmark: {args.files:,} files in the ledger + {args.new} new, median of {args.repeat}")
    print(f"  setup (write files + ledger)      {setup:8.2f} s")
    print(f"  baseline: os.walk + stat          {floor_s * 1000:8.1f} ms  ({seen:,} files)")
    print(f"  landing.scan (fsspec find)        {list_s * 1000:8.1f} ms")
    print(f"  ledger paths (delta-rs)           {ledger_s * 1000:8.1f} ms")
    print(f"  decide (set arithmetic)           {decide_s * 1000:8.1f} ms")
    print(f"  whole tick (sensor evaluation)    {tick_s * 1000:8.1f} ms  = {tick_s / floor_s:.1f}x the baseline")
    print(f"  requested: {len(requested)} file(s) in {len(tick.run_requests)} run request(s)")
    ok = tick_s <= TARGET_SECONDS
    print(f"  target: tick <= {TARGET_SECONDS:.1f} s -> {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
