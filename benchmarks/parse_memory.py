"""Benchmark: the peak memory of a Python worker parsing one titles file, on a pathological
2 GB file made of a single line and on a 1 GB file of ordinary rows.

Each file is parsed by the function Spark's Python workers run for bronze
(`transforms.bronze._parse_partition`, Arrow batches out, default limits), in a
fresh child process whose peak RSS (VmHWM) is reported beside the RSS it had
before parsing (interpreter + imports): the difference is what the file cost.

    python -m benchmarks.parse_memory [--line-gb 2] [--normal-gb 1] [--dir /tmp]

Prints one JSON line per file (the last line of output holds both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = b"duration_minutes,duration_seasons,type,title,date_added,release_year,rating,description,show_id\n"
CHUNK = 1 << 20


def write_single_line(path: Path, size: int) -> None:
    """`size` bytes with no line break after the header: one 'line' that never ends."""
    block = b"x" * CHUNK
    with open(path, "wb") as out:
        out.write(HEADER)
        written = len(HEADER)
        while written < size:
            out.write(block[: min(CHUNK, size - written)])
            written += CHUNK


def write_normal(path: Path, size: int) -> None:
    """`size` bytes of ordinary tutorial-format rows (~500 bytes each, distinct show_ids)."""
    with open(path, "wb") as out:
        out.write(HEADER)
        written, i = len(HEADER), 0
        while written < size:
            rows = b"".join(
                b'90,,Movie,Title %d,"September 1, 2021",2020,PG,%s,%d\n' % (n, b"d" * 420, 70000000 + n)
                for n in range(i, i + 2000)
            )
            i += 2000
            out.write(rows)
            written += len(rows)


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM belongs to the process image; `ru_maxrss` would carry
    the high-water mark of a parent that forked us (measured: a pytest parent's 400 MB)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path: str) -> dict:
    """Runs in the measured process: parse `path` as a Spark Python worker would."""
    import pyarrow as pa

    from netflix_assets.transforms.bronze import _parse_partition
    from netflix_assets.transforms.csv_records import DEFAULT_LIMITS
    from netflix_assets.transforms.formats import TITLE_FORMATS, union_columns

    before = peak_rss_mb()
    run = _parse_partition(tuple(union_columns(TITLE_FORMATS)), tuple(TITLE_FORMATS), {}, DEFAULT_LIMITS)
    batch = pa.RecordBatch.from_pydict(
        {"uri": [path], "ingested_at": [None], "size": [os.path.getsize(path)], "fallback": [None], "fallback_only": [False]},
        schema=pa.schema([("uri", pa.string()), ("ingested_at", pa.timestamp("us", tz="UTC")),
                          ("size", pa.int64()), ("fallback", pa.string()), ("fallback_only", pa.bool_())]),
    )
    t0 = time.perf_counter()
    rows, refused = 0, set()
    for out in run(iter([batch])):
        reasons = out.column("_reject_reason").to_pylist()
        rows += sum(r is None for r in reasons)
        refused |= {r.split(":", 1)[0] for r in reasons if r}
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()
    return {"file_mb": os.path.getsize(path) / 2**20, "rows": rows, "refused": sorted(refused),
            "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak, 1), "seconds": round(seconds, 1),
            "record_limit_mb": DEFAULT_LIMITS.max_record_bytes / 2**20}


def measure(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.parse_memory", "--child", str(path)],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the measured worker failed: {out.stderr.strip()[-1500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child")
    parser.add_argument("--line-gb", type=float, default=2.0)
    parser.add_argument("--normal-gb", type=float, default=1.0)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    results = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for name, writer, gb in (("single_line", write_single_line, args.line_gb), ("normal", write_normal, args.normal_gb)):
            path = Path(tmp) / f"{name}.csv"
            writer(path, int(gb * 2**30))
            results[name] = measure(path)
            path.unlink()
            print(f"{name:12} {results[name]}", flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
