"""Benchmark: one landing-zone sensor tick with 10,000 files already landed (and
in the ledger) plus a few new ones, against the floor of any listing-based
discovery in the same run: a bare os.walk + stat of the same tree. Then the same
tick with archiving on, once with 100 and once with 100,000 files ingested and
archived (in `<landing>/_archive`, and in the ledger): the listing never enters the
archive, so the two must cost about the same.

    python -m benchmarks.sensor_tick [--files 10000] [--new 10] [--repeat 5] [--archived 100,100000]

Prints the figures; exits 1 if the tick misses its target (TARGET_SECONDS) or the
100,000-archived tick costs more than ARCHIVE_GROWTH_LIMIT times the 100-archived one.
The archived files are hard links of one file: 100,000 of them take seconds to make.
"""

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

TARGET_SECONDS = 2.0
# A tick with 100,000 files archived may cost at most this much more than one with 100: the
# listing never enters the archive; what grows is the ledger the sensor reads (one path per file).
ARCHIVE_GROWTH_LIMIT = 1.5
LINKS_PER_FILE = 50_000
HEADER = "show_id,type,title,director,cast,country,date_added,release_year,rating,duration,listed_in,description\n"


def build_landing(root: Path, files: int, new: int) -> tuple[list[str], list[str]]:
    zone = root / "raw" / "netflix_titles"
    old, fresh = [], []
    for i in range(files + new):
        folder = zone / f"2026/{i // 1000:02}/{(i // 100) % 10:02}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"titles_{i:06}.csv"
        path.write_text(HEADER)
        (old if i < files else fresh).append(f"file://{path}")
    return old, fresh


def ledger_table(paths: list[str], discovered: dt.datetime):
    """Ledger rows (an Arrow table) for `paths`, ingested on `discovered`'s day."""
    import pyarrow as pa

    n = len(paths)
    return pa.table(
        {
            "path": paths,
            "size": [113] * n,
            "modified_at": [discovered] * n,
            "etag": [None] * n,
            "sha256": [f"{i:064x}" for i in range(n)],
            "discovered_at": [discovered] * n,
            "ingest_date": [discovered.date()] * n,
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


def write_ledger(lake_root: Path, paths: list[str], archived: Optional[list[str]] = None, archived_at=None) -> None:
    """The ledger as bronze leaves it after ingesting `paths` today and `archived` on
    `archived_at`'s day (written with delta-rs: no JVM needed). Replaces any previous one."""
    import pyarrow as pa
    from deltalake import write_deltalake

    tables = [ledger_table(paths, dt.datetime.now(dt.timezone.utc))]
    if archived:
        tables.append(ledger_table(archived, archived_at))
    write_deltalake(
        str(lake_root / "bronze" / "_ingested_files"), pa.concat_tables(tables), partition_by=["ingest_date"], mode="overwrite"
    )


def archived_uris(zone_dir: Path, count: int) -> list[str]:
    """Landing URIs of `count` files ingested long ago (named apart from the live ones)."""
    return [f"file://{zone_dir}/old/{i // 1000:03}/{(i // 100) % 10:02}/archived_{i:06}.csv" for i in range(count)]


def fill_archive(landing, uris: list[str], day: dt.date, have: int) -> None:
    """Put `uris[have:]` where archiving moved them (`archived_uri`): hard links of a few
    files (a file system caps the links of one inode, ext4 at 65,000), so 100,000 of them
    cost seconds and no disk."""
    source = None
    for i, uri in enumerate(uris[have:]):
        target = Path(landing.archived_uri(uri, day)[len("file://") :])
        target.parent.mkdir(parents=True, exist_ok=True)
        if i % LINKS_PER_FILE == 0:
            target.write_text(HEADER)
            source = target
        else:
            os.link(source, target)


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


def alternated(fns: list, repeat: int) -> list[float]:
    """Median time of each of `fns`, run in turn (a, b, a, b...): a slow moment of the
    machine falls on both, not on one."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


class Lake:
    """A lake with `files` ingested titles files + `new` new ones in its landing zone, and the
    sensor's definitions over it."""

    def __init__(self, root: Path, files: int, new: int, **landing_fields):
        from netflix_assets.definitions import build_definitions
        from netflix_assets.deployments import local_resources
        from netflix_assets.resources.landing import LandingZoneResource

        self.root, self.zone_dir = root, root / "raw" / "netflix_titles"
        self.old, self.fresh = build_landing(root, files, new)
        write_ledger(root, self.old)
        self.landing = LandingZoneResource(uri=str(self.zone_dir), settle_seconds=0, **landing_fields)
        resources = local_resources(lake_uri=str(root), landing=self.landing)
        self.defs = build_definitions(resources)
        self.lake = resources["lake"]
        self.archived: list[str] = []

    def archive(self, count: int) -> None:
        """`count` files ingested 30 days ago and since archived: in the archive and the ledger."""
        day = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
        uris = archived_uris(self.zone_dir, count)
        fill_archive(self.landing, uris, day.date(), len(self.archived))
        write_ledger(self.root, self.old, uris, day)
        self.archived = uris

    def tick(self, instance):
        from netflix_assets import sensor_runs

        tick = sensor_runs.tick(self.defs, instance)
        requested = [f for r in tick.run_requests for f in r.run_config["ops"]["bronze_netflix_titles"]["config"]["files"]]
        assert sorted(requested) == sorted(self.fresh), "the tick must request exactly the new files"
        return tick

    def parts(self, repeat: int) -> dict[str, float]:
        """Median seconds of the tick's parts: listing, ledger read, decision."""
        from netflix_assets.bronze import discovery
        from netflix_assets.bronze.sensors import claimed_paths

        list_s, scanned = timed(self.landing.scan, repeat)
        ledger_s, claimed = timed(lambda: claimed_paths(self.lake, self.landing), repeat)
        now = dt.datetime.now(dt.timezone.utc)
        decide_s, _ = timed(
            lambda: discovery.decide(scanned[0], scanned[1], claimed, discovery.Cursor(), now, 0, lambda k: None),
            repeat,
        )
        return {"scan": list_s, "ledger": ledger_s, "decide": decide_s, "claimed": len(claimed)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--archived", default="100,100000", help="archived files of the two ticks with archiving on ('' skips them)"
    )
    args = parser.parse_args()
    archived = [int(n) for n in args.archived.split(",") if n]

    import dagster as dg

    with tempfile.TemporaryDirectory() as tmp, dg.DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        plain = Lake(Path(tmp) / "plain", args.files, args.new)
        setup = time.perf_counter() - started
        tick_s, tick = timed(lambda: plain.tick(instance), args.repeat)
        floor_s, seen = timed(lambda: walk_floor(plain.zone_dir), args.repeat)
        parts = plain.parts(args.repeat)

        print(f"sensor tick benchmark: {args.files:,} files in the ledger + {args.new} new, median of {args.repeat}")
        print(f"  setup (write files + ledger)      {setup:8.2f} s")
        print(f"  baseline: os.walk + stat          {floor_s * 1000:8.1f} ms  ({seen:,} files)")
        print(f"  landing.scan (fsspec ls + find)   {parts['scan'] * 1000:8.1f} ms")
        print(f"  ledger paths (delta-rs)           {parts['ledger'] * 1000:8.1f} ms")
        print(f"  decide (set arithmetic)           {parts['decide'] * 1000:8.1f} ms")
        print(f"  whole tick (sensor evaluation)    {tick_s * 1000:8.1f} ms  = {tick_s / floor_s:.1f}x the baseline")
        requested = sum(len(r.run_config["ops"]["bronze_netflix_titles"]["config"]["files"]) for r in tick.run_requests)
        print(f"  requested: {requested} file(s) in {len(tick.run_requests)} run request(s)")
        ok = tick_s <= TARGET_SECONDS
        print(f"  target: tick <= {TARGET_SECONDS:.1f} s -> {'met' if ok else 'MISSED'}")
        result = {"tick_ms": tick_s * 1000, "walk_ms": floor_s * 1000, "files": args.files, "new": args.new,
                  "requested": requested, "target_met": ok}
        if len(archived) != 2:
            print(json.dumps(result), flush=True)  # the last line: what `benchmarks.bench` reads
            return 0 if ok else 1

        # Archiving on: the same landing zone, plus files ingested 30 days ago and archived.
        started = time.perf_counter()
        lakes = []
        for i, count in enumerate(archived):
            lake = Lake(Path(tmp) / f"archived{i}", args.files, args.new, archive_after_days=7)
            lake.archive(count)
            lakes.append(lake)
        setup = time.perf_counter() - started
        ticks = alternated([lambda lake=lake: lake.tick(instance) for lake in lakes], args.repeat)
        small, large = (lake.parts(args.repeat) for lake in lakes)
        # What the listing would cost if it entered the archive (the one recursive find of before).
        flat = [timed(lambda lake=lake: len(lake.landing.filesystem()[0].find(str(lake.zone_dir))), 1)[0] for lake in lakes]

    a, b = archived
    print()
    print(f"with archiving on (archive_after_days=7): {args.files:,} files in the landing zone + {args.new} new, "
          f"and files ingested then archived, median of {args.repeat} alternated ticks")
    print(f"  setup (files, hard links in the archive, ledger) {setup:6.2f} s")
    print(f"  {'':34}{f'{a:,} archived':>16}{f'{b:,} archived':>18}{'ratio':>8}")
    rows = [
        ("ledger rows", small["claimed"], large["claimed"], "{:,}"),
        ("landing.scan (ms)", small["scan"] * 1000, large["scan"] * 1000, "{:.1f}"),
        ("ledger paths, delta-rs (ms)", small["ledger"] * 1000, large["ledger"] * 1000, "{:.1f}"),
        ("decide (ms)", small["decide"] * 1000, large["decide"] * 1000, "{:.1f}"),
        ("whole tick (ms)", ticks[0] * 1000, ticks[1] * 1000, "{:.1f}"),
        ("(a find entering the archive, ms)", flat[0] * 1000, flat[1] * 1000, "{:.1f}"),
    ]
    for label, x, y, fmt in rows:
        print(f"  {label:34}{fmt.format(x):>16}{fmt.format(y):>18}{y / x if x else float('nan'):>7.2f}x")
    growth_ok = ticks[1] <= ARCHIVE_GROWTH_LIMIT * ticks[0]
    print(
        f"  target: the {b:,}-archived tick <= {ARCHIVE_GROWTH_LIMIT:.1f}x the {a:,}-archived tick "
        f"-> {'met' if growth_ok else 'MISSED'} ({ticks[1] / ticks[0]:.2f}x)"
    )
    result.update({"archived": archived, "archived_tick_ms": [t * 1000 for t in ticks], "archive_growth_met": growth_ok})
    print(json.dumps(result), flush=True)  # the last line: what `benchmarks.bench` reads
    return 0 if ok and growth_ok else 1


if __name__ == "__main__":
    sys.exit(main())
