"""`make bench`: the pipeline against a plain PySpark baseline, the incremental cost
curve, the sensor tick and the definitions load, measured side by side in one run.

    python -m benchmarks.bench [--sizes bundled,100k,1m] [--reps 1] [--curve 10k,100k] [--out BENCHMARKS.md]

Every measurement runs in a fresh process (so each pays its own JVM start), and
pipeline and baseline alternate (P B, then B P, across pairs and sizes) so drifting
machine load hits both. The outputs of every size are compared at the end (delta-rs and DuckDB: no JVM).
Peak memory is the process tree's (Python + the Spark JVM), sampled every 0.2 s.
Synthetic inputs are `benchmarks.synthetic` Kaggle-format files of 1,000 rows (a
landing zone accumulating files), generated once under `.bench/` (seeded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench"
TUTORIAL = ROOT / "netflix_assets" / "data" / "netflix_tutorial"
ROWS_PER_FILE = 1000
CONNECT_REPS = 1  # local JVM / Spark Connect client pairs (the gap is 10x: one pair tells it)
WARM_REPS = 3  # rounds of whole-run processes, one per mode (order rotated per round)
# Whole-run modes of `warm_runs`: (client of the warm server, steps at once). `classic` is the run as the
# issue measured it (its own JVM, one step at a time); `threads` is a run under `make dev` today.
WARM_MODES = {"classic": (False, 1), "connect": (True, 1), "threads": (True, None)}
SEED = 20261124
# name -> number of 1,000-row files (None: the bundled real titles file).
SIZES = {"bundled": None, "10k": 10, "100k": 100, "1m": 1000}
TARGETS = {"ratio_at_1m": 1.25, "incremental_share": 0.20, "incremental_flatness": 1.5, "tick_s": 2.0, "defs_load_s": 3.0}
SILVER_GOLD = [
    *(f"silver/netflix_{t}" for t in ("titles", "cast", "category", "countries", "directors")),
    *(f"gold/netflix_{t}" for t in ("titles", "cast", "category", "countries", "directors")),
    "gold/dim_title", "gold/dim_person", "gold/fact_title_added", "gold/kpi_rating_mix", "gold/kpi_top_countries",
]


@dataclass
class Measure:
    wall_s: float
    peak_rss_mb: float
    stdout: str
    info: dict = field(default_factory=dict)


def run_measured(cmd: list[str], env: dict | None = None) -> Measure:
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    peak = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out = proc.stdout.read()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {proc.returncode}:\n{out[-2000:]}")
    return Measure(wall, peak / 2**20, out)


def titles_dir(size: str) -> Path:
    """The titles files of a size, generated once (deterministic)."""
    files = SIZES[size]
    folder = WORK / "inputs" / size
    if files is None:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(TUTORIAL / "netflix_titles.csv", folder / "netflix_titles.csv")
        return folder
    if len(list(folder.glob("*.csv"))) != files:
        from benchmarks.synthetic import incremental_files

        shutil.rmtree(folder, ignore_errors=True)
        staging = folder.with_suffix(".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        incremental_files(staging, files, ROWS_PER_FILE, SEED, "kaggle", start_id=10_000, jobs=os.cpu_count() or 1)
        staging.rename(folder)
    return folder


def new_file() -> Path:
    """The one new 1,000-row file of the incremental measure (new titles only)."""
    path = WORK / "inputs" / "drop" / "netflix_titles_drop.csv"
    if not path.exists():
        from benchmarks.synthetic import write_catalog

        path.parent.mkdir(parents=True, exist_ok=True)
        write_catalog(path, ROWS_PER_FILE, SEED + 1, "kaggle", start_id=5_000_000)
    return path


def csv_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.csv"))


def pipeline(size: str, lake: Path, incremental: bool) -> Measure:
    shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(lake.with_name(lake.name + "_full"), ignore_errors=True)
    folder = titles_dir(size)
    flat = WORK / "flat" / size  # pipeline_run lands every *.csv of one folder
    if not flat.exists():
        flat.mkdir(parents=True)
        for i, path in enumerate(csv_files(folder)):
            os.link(path, flat / f"{i:05}_{Path(path).name}")
    cmd = [sys.executable, "-m", "benchmarks.pipeline_run", "--titles-dir", str(flat), "--lookups", str(TUTORIAL), "--lake", str(lake)]
    if incremental:
        cmd += ["--incremental", str(new_file())]
    m = run_measured(cmd)
    m.info = json.loads(m.stdout.strip().splitlines()[-1])
    # Wall time of the full run's process: a curve run also times one new file afterwards.
    m.info["process_wall_s"] = m.wall_s
    m.wall_s -= m.info.get("incremental_phase_s", 0.0)
    if not m.info["success"]:
        raise RuntimeError(f"pipeline run failed at {size}: {m.info}")
    return m


def warm_runs(reps: int = WARM_REPS) -> dict:
    """What a run launched under `make dev` costs, as its own process (the daemon launches each run
    as one), for each of `WARM_MODES`: its own JVM one step at a time, a client of the warm Spark
    Connect server one step at a time, and that client with the run's ready steps in threads
    (`NETFLIX_STEP_THREADS`'s default): (b) materializing the whole graph for today's partition on
    the bundled data (the UI's "Materialize all"), then (a) one new 1,000-row file from its landing
    to gold committed (the sensor's tick and the run it requests). The order of the modes rotates
    per round; the server starts once, and its first run meets a cold JIT."""
    from benchmarks.spark_connect import start_server
    from netflix_assets.resources import spark_connect
    from netflix_assets.resources.spark import REMOTE_ENV

    port = spark_connect.free_port()
    server, ready_s, url = start_server(port)
    seconds: dict[str, dict[str, list[float]]] = {m: {"full": [], "file": []} for m in WARM_MODES}
    modes = list(WARM_MODES)
    try:
        for rep in range(reps):
            for mode in modes[rep % len(modes):] + modes[:rep % len(modes)]:
                remote, threads = WARM_MODES[mode]
                lake, instance = WORK / f"warm_{mode}", WORK / f"warm_{mode}_instance"
                for folder in (lake, instance):
                    shutil.rmtree(folder, ignore_errors=True)
                instance.mkdir(parents=True)
                env = {k: v for k, v in os.environ.items() if k not in (REMOTE_ENV, "NETFLIX_STEP_THREADS")}
                if remote:
                    env[REMOTE_ENV] = url
                if threads:
                    env["NETFLIX_STEP_THREADS"] = str(threads)
                cmd = [sys.executable, "-m", "benchmarks.pipeline_run", "--titles-dir", str(titles_dir("bundled")),
                       "--lookups", str(TUTORIAL), "--lake", str(lake), "--instance-dir", str(instance)]
                full = run_measured(cmd, env)
                drop = run_measured([*cmd, "--incremental", str(new_file()), "--incremental-only"], env)
                for m in (full, drop):
                    info = json.loads(m.stdout.strip().splitlines()[-1])
                    if info["session"].startswith("pyspark.sql.connect") != remote:
                        raise RuntimeError(f"{mode} run had a {info['session']} session")
                drop_info = json.loads(drop.stdout.strip().splitlines()[-1])
                if not drop_info.get("incremental_gold_updated"):
                    raise RuntimeError(f"{mode}: the new file's run did not reach gold: {drop_info}")
                seconds[mode]["full"].append(full.wall_s)
                seconds[mode]["file"].append(drop.wall_s)
                print(f"warm runs {mode:7} rep {rep}: materialize all {full.wall_s:.1f} s, new file {drop.wall_s:.1f} s", flush=True)
    finally:
        spark_connect.stop(server)
    return {"server_ready_s": ready_s, "reps": reps, "seconds": seconds,
            **{f"{m}_{k}_s": statistics.median(v) for m, kinds in seconds.items() for k, v in kinds.items()}}


def baseline(size: str, lake: Path, day: str) -> Measure:
    shutil.rmtree(lake, ignore_errors=True)
    cmd = [sys.executable, "-m", "benchmarks.baseline", "--titles", *csv_files(titles_dir(size)),
           "--lookups", str(TUTORIAL), "--out", str(lake), "--day", day]
    m = run_measured(cmd)
    m.info = _last_json(m.stdout) or {"run_s": None}
    return m


def duckdb_floor(size: str) -> Measure:
    out = WORK / "duckdb_floor"
    shutil.rmtree(out, ignore_errors=True)
    m = run_measured([sys.executable, "-m", "benchmarks.duckdb_floor", "--titles", *csv_files(titles_dir(size)),
                      "--lookups", str(TUTORIAL), "--out", str(out)])
    m.info = json.loads(m.stdout.strip().splitlines()[-1])
    return m


def spark_connect(table: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.spark_connect", "--reps", str(CONNECT_REPS), "--table", str(table)],
                         cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def key_checks(lake: Path) -> dict:
    """The key check by a hash of the key against by the key, on the largest lake's tables (`benchmarks/key_check.py`)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.key_check", "--lake", str(lake)], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return _last_json(out.stdout) or {"error": "no report"}


def key_check_lines(keys: dict) -> list[str]:
    lines = ["", "## Key checks: rows counted per hash of the key", "",
             "`transforms.quality.key_verdict` counts a table's rows per 64-bit hash of its key and groups by the key",
             "itself only when a hash repeats (a duplicate, or two keys sharing a hash), so its verdict is exact; against it,",
             "the same verdict grouping by the key columns. One warm session, the largest lake's newest partition,",
             f"median of {keys.get('reps', '?')} alternated (`benchmarks/key_check.py`):", ""]
    if "error" in keys:
        return lines + [f"Not measured: {keys['error']}"]
    lines += ["| table | key | rows | by the key | by its hash | speed-up | same verdict |", "|---|---|---|---|---|---|---|"]
    for table, k in keys["tables"].items():
        lines.append(f"| {table} | ({', '.join(k['key'])}) | {k['rows']:,} | {k['by_key_s']:.2f} s | {k['by_hash_s']:.2f} s | "
                     f"{k['by_key_s'] / k['by_hash_s']:.2f}x | {k['same_verdict']} |")
    lines += ["", "The write of a whole partition observes its key check instead (`lib.checks.key_check`: each key's rows",
              "numbered by a window in the written plan, the rows numbered past 1 counted by `DataFrame.observe`); the same",
              "partitions written whole to a scratch table, then checked by the query above, against observed by the write",
              "(same verdict: the column above covers both):", "",
              "| table | rows | write, then its query | write observing it | speed-up |", "|---|---|---|---|---|"]
    for table, k in keys["tables"].items():
        if "write_observing_s" in k:
            lines.append(f"| {table} | {k['rows']:,} | {k['write_then_query_s']:.2f} s | {k['write_observing_s']:.2f} s | "
                         f"{k['write_then_query_s'] / k['write_observing_s']:.2f}x |")
    return lines


def _last_json(stdout: str) -> dict:
    """What a benchmark child reports: its last line of output, one JSON object ({} if it printed none)."""
    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}


def compare(pairs: dict[str, tuple[Path, Path]], day: str) -> dict[str, list[str]]:
    """Differences per size between the pipeline's and the baseline's lakes (delta-rs + DuckDB, no JVM)."""
    from benchmarks.baseline import compare_lakes

    return {k: [str(x) for x in compare_lakes(str(a), str(b), SILVER_GOLD, day, sample=50)] for k, (a, b) in pairs.items()}


def sensor_tick() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.sensor_tick", "--repeat", "3"], cwd=ROOT,
                         capture_output=True, text=True).stdout
    return _last_json(out)


def parse_memory() -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.parse_memory"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def definitions_load(reps: int = 3) -> dict[str, float]:
    validate = [run_measured([sys.executable, "-m", "dagster", "definitions", "validate", "-m", "netflix_assets.definitions"]).wall_s
                for _ in range(reps)]
    code = ("import time; t=time.perf_counter(); import netflix_assets.definitions; "
            "from pyspark import SparkContext; assert SparkContext._active_spark_context is None; print(time.perf_counter()-t)")
    imports = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout)
               for _ in range(reps)]
    return {"validate_s": statistics.median(validate), "import_s": statistics.median(imports)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="bundled,100k,1m")
    parser.add_argument("--reps", type=int, default=1,
                        help="pipeline/baseline pairs per size; the order alternates (P B, then B P) across pairs and sizes")
    parser.add_argument("--curve", default="10k,100k,1m",
                        help="sizes whose pipeline run also times one new file (K = 10, 100, 1,000 files already in)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-warm-runs", dest="warm_runs", action="store_false",
                        help="skip the whole-run processes against a warm Spark Connect server (~25 min: 3 rounds of 3 modes)")
    args = parser.parse_args(argv)
    sizes = [s for s in args.sizes.split(",") if s]
    curve = [s for s in args.curve.split(",") if s]
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    started = time.perf_counter()
    WORK.mkdir(exist_ok=True)

    comparisons, curve_points, lakes, phases = {}, {}, {}, {}

    def timed(phase: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - t0

    pair = 0
    for size in sizes:
        timed(f"generate {size} inputs", titles_dir, size)
        p_runs, b_runs = [], []
        p_lake, b_lake = WORK / f"lake_pipeline_{size}", WORK / f"lake_baseline_{size}"
        for rep in range(args.reps):
            order = ("p", "b") if pair % 2 == 0 else ("b", "p")
            pair += 1
            for which in order:
                if which == "p":
                    m = timed(f"{size} pipeline", pipeline, size, p_lake, incremental=(rep == 0 and size in curve))
                    p_runs.append(m)
                    print(f"{size:8} pipeline  {m.wall_s:7.1f} s  (run {m.info['full_run_s']:.1f} s)  peak {m.peak_rss_mb:6.0f} MB", flush=True)
                    if "incremental_s" in m.info:
                        curve_points[size] = (m.info["files"], m.info)
                else:
                    m = timed(f"{size} baseline", baseline, size, b_lake, day)
                    b_runs.append(m)
                    print(f"{size:8} baseline  {m.wall_s:7.1f} s  (run {m.info['run_s']:.1f} s)  peak {m.peak_rss_mb:6.0f} MB", flush=True)
        # The pipeline's lake as the full run left it (a curve run drops one more file afterwards).
        lakes[size] = (next((Path(m.info["full_lake"]) for m in p_runs if "full_lake" in m.info), p_lake), b_lake)
        floor = timed("DuckDB floor", duckdb_floor, size)
        titles = p_runs[0].info["rows"].get("bronze/netflix_titles", 0)
        comparisons[size] = {"p": p_runs, "b": b_runs, "diffs": [], "titles": titles, "duckdb": floor}
        print(f"{size:8} DuckDB floor {floor.info['seconds']:.1f} s (process {floor.wall_s:.1f} s)", flush=True)
    for size in curve:
        if size not in curve_points:
            m = timed(f"{size} curve point", pipeline, size, WORK / f"lake_pipeline_{size}", incremental=True)
            curve_points[size] = (m.info["files"], m.info)
            print(f"{size:8} incremental {m.info['incremental_s']:.1f} s after a {m.info['full_run_s']:.1f} s full run", flush=True)
    for size, diffs in timed("compare outputs", compare, lakes, day).items():
        comparisons[size]["diffs"] = diffs
        print(f"{size:8} outputs compared: {len(diffs)} difference(s)", flush=True)
    connect = timed("Spark Connect", spark_connect, lakes[sizes[-1]][0] / "silver" / "netflix_titles") if sizes else {"error": "no size run"}
    print(f"spark connect: {connect}", flush=True)
    keys = timed("key checks", key_checks, lakes[sizes[-1]][0]) if sizes else {"error": "no size run"}
    warm = timed("warm runs", warm_runs) if args.warm_runs else {"error": "skipped (--no-warm-runs)"}
    tick = timed("sensor tick", sensor_tick)
    defs = timed("definitions load", definitions_load)
    memory = timed("parser memory", parse_memory)
    total = time.perf_counter() - started
    report = render(comparisons, curve_points, connect, keys, warm, tick, defs, memory, phases, total, " ".join(["python -m benchmarks.bench", *(argv or sys.argv[1:])]))
    args.out.write_text(report)
    print(report)
    return 0


STEP_KINDS = ("raw", "bronze", "silver", "gold", "checks", "serving")
TOP_STEPS = 5


def step_kind(step_key: str) -> str:
    """The layer a step writes: `silver__netflix_titles__checks` -> checks, `gold__dim_title` and the
    multi-asset op `silver_netflix_cast` (its quarantine table rides along) -> gold / silver, the
    lookup pulls `raw__netflix_cast`... -> raw, the SQL endpoint's catalog `serving__sql_catalog` -> serving."""
    if step_key.endswith("__checks"):
        return "checks"
    prefix = step_key.split("_", 1)[0]
    prefix = "raw" if prefix == "pull" else prefix
    return prefix if prefix in STEP_KINDS else "other"


def profile_lines(runs: list[tuple[str, dict[str, float]]]) -> list[str]:
    """Step wall seconds summed by kind for each run, then each run's slowest steps."""
    unknown = any(step_kind(key) == "other" for _, steps in runs for key in steps)
    kinds = [*STEP_KINDS, *(["other"] if unknown else [])]
    lines = ["| run | steps | " + " | ".join(kinds) + " |", "|---|---|" + "---|" * len(kinds)]
    for label, steps in runs:
        sums = dict.fromkeys(kinds, 0.0)
        for key, seconds in steps.items():
            sums[step_kind(key)] += seconds
        lines.append(f"| {label} | {len(steps)} | " + " | ".join(f"{sums[k]:.0f} s" for k in kinds) + " |")
    lines.append("")
    for label, steps in runs:
        top = sorted(steps.items(), key=lambda kv: -kv[1])[:TOP_STEPS]
        lines.append(f"- {label}, slowest steps: " + ", ".join(f"`{k}` {v:.1f} s" for k, v in top))
    return lines


def _med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def memory_lines(memory: dict) -> list[str]:
    lines = ["", "## Parser memory (one Python worker, one file)", ""]
    if "error" in memory:
        return lines + [f"Not measured: {memory['error']}"]
    lines += [
        "The function Spark's Python workers run for bronze, in a fresh process per file (`benchmarks/parse_memory.py`,",
        "`make bench-memory`); *before*: the interpreter and imports; default limits (a record over "
        f"{memory['normal']['record_limit_mb']:.0f} MiB refuses the file).", "",
        "| file | size | outcome | peak RSS | before parsing | parse time |", "|---|---|---|---|---|---|",
    ]
    for name, label in (("single_line", "one line, no line break"), ("normal", "ordinary rows")):
        m = memory[name]
        outcome = f"refused ({', '.join(m['refused'])})" if m["refused"] else f"{m['rows']:,} rows"
        lines.append(f"| {label} | {m['file_mb'] / 1024:.1f} GiB | {outcome} | {m['peak_rss_mb']:.0f} MB | "
                     f"{m['rss_before_mb']:.0f} MB | {m['seconds']:.1f} s |")
    return lines


def warm_lines(warm: dict) -> list[str]:
    if "error" in warm:
        return ["", f"Whole runs against the warm server: not measured ({warm['error']})."]
    def cells(kind: str) -> str:
        classic = warm[f"classic_{kind}_s"]
        return " | ".join([f"{classic:.1f} s", *(f"{warm[f'{m}_{kind}_s']:.1f} s ({classic / warm[f'{m}_{kind}_s']:.1f}x)"
                                               for m in ("connect", "threads"))])
    return [
        "", f"Whole runs, each its own process as the daemon launches it (`warm_runs` in `benchmarks/bench.py`), "
        f"median of {warm['reps']} rounds (one run per mode, order rotated); the server's first run meets a cold JIT:", "",
        "| run (its process, start to exit) | own JVM, one step at a time (before `make dev`'s server) "
        "| client of the warm server, one step at a time | client of the warm server, 2 steps at once (`make dev` today) |",
        "|---|---|---|---|",
        f"| (a) one new 1,000-row file, landing to gold committed (sensor tick + the run it requests) | {cells('file')} |",
        f"| (b) \"Materialize all\" of today's partition, bundled data | {cells('full')} |",
        "", "Every measurement (s): " + "; ".join(
            f"{mode} {kind} " + ", ".join(f"{x:.1f}" for x in values)
            for mode, kinds in warm["seconds"].items() for kind, values in kinds.items()) + ".",
    ]


SUITE_TIME = ROOT / "benchmarks" / "suite_time.md"
# Figures measured by hand (a script or a command run on its own), which the report keeps as they are.
MEASURED = ROOT / "benchmarks" / "measured.md"


def render(comparisons, curve_points, connect, keys, warm, tick, defs, memory, phases, total, command) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` (`make bench`) on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{psutil.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB; whole run {total / 60:.1f} min.",
        "One pipeline/baseline pair per size by default (`--reps N`: medians over N alternated pairs). *Wall* includes the process and its JVM start; *run* excludes the",
        "session start (pipeline: `lakehouse_job` for one partition, every asset and check; baseline: the same",
        "transforms and Delta writes in one SparkSession, no checks, no ledger). A curve size's pipeline process then times one",
        "new file (below): its wall time here stops at the end of the full run, its peak memory covers both.",
        "",
        "## Pipeline vs plain PySpark baseline",
        "",
        "| input | titles rows | pipeline wall | baseline wall | ratio (wall) | pipeline run | baseline run | ratio (run) | rows/s pipeline | rows/s baseline | peak MB pipeline | peak MB baseline | outputs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, c in comparisons.items():
        pw, bw = _med([m.wall_s for m in c["p"]]), _med([m.wall_s for m in c["b"]])
        pr, br = _med([m.info["full_run_s"] for m in c["p"]]), _med([m.info["run_s"] for m in c["b"]])
        pm, bm = max(m.peak_rss_mb for m in c["p"]), max(m.peak_rss_mb for m in c["b"])
        n = c["titles"]
        same = "same" if not c["diffs"] else f"{len(c['diffs'])} differences"
        lines.append(
            f"| {size} | {n:,} | {pw:.0f} s | {bw:.0f} s | {pw / bw:.2f} | {pr:.0f} s | {br:.0f} s | {pr / br:.2f} | "
            f"{n / pr:,.0f} | {n / br:,.0f} | {pm:,.0f} | {bm:,.0f} | {same} |"
        )
    lines.append(f"\n*outputs*: the {len(SILVER_GOLD)} silver and gold tables of both lakes, row counts and ~50 sampled keys per table "
                 "compared column by column (`benchmarks.baseline.compare_lakes`: delta-rs reads, DuckDB samples).")
    for size, c in comparisons.items():
        for d in c["diffs"][:10]:
            lines.append(f"- {size}: {d}")
    if comparisons:
        size, c = list(comparisons.items())[-1]
        ratio = _med([m.info["full_run_s"] for m in c["p"]]) / _med([m.info["run_s"] for m in c["b"]])
        lines.append(f"\nTarget: pipeline / baseline <= {TARGETS['ratio_at_1m']} at 1M titles; at {size}: {ratio:.2f} (run).")
    lines += ["", "## The single-node floor: DuckDB", "",
              "The notebooks' bronze -> silver -> gold titles and lookups in one in-process DuckDB (`benchmarks/duckdb_floor.py`,",
              "Parquet out, no checks, no ledger): what one machine can do at best, beside the Spark figures above.", "",
              "| input | DuckDB work | DuckDB process | pipeline run | baseline run | silver titles (pipeline / DuckDB) | gold titles (pipeline / DuckDB) |",
              "|---|---|---|---|---|---|---|"]
    for size, c in comparisons.items():
        f, rows = c["duckdb"], c["p"][0].info["rows"]
        pr, br = _med([m.info["full_run_s"] for m in c["p"]]), _med([m.info["run_s"] for m in c["b"]])
        lines.append(f"| {size} | {f.info['seconds']:.1f} s | {f.wall_s:.1f} s | {pr:.0f} s | {br:.0f} s | "
                     f"{rows.get('silver/netflix_titles', 0):,} / {f.info['rows']['silver_titles']:,} | "
                     f"{rows.get('gold/netflix_titles', 0):,} / {f.info['rows']['gold_titles']:,} |")
    lines += ["", "## Incremental cost curve (one new file of 1,000 rows; warm session, sensor tick + run)", "",
              "The sensor's `landed_titles_job` run refreshes the day's existing silver and gold partitions by the",
              "show_ids the new file touches (`netflix_assets/lib/refresh.py`); *tables in part / whole*: how many",
              "of the run's tables were written in part (bronze: the new file; silver, gold snapshots: by key) and how many whole.", "",
              "| files already ingested (K) | full run | sensor tick | drop -> gold rewritten | share of full run | tables in part / whole |",
              "|---|---|---|---|---|---|"]
    points = sorted(curve_points.values(), key=lambda p: p[0])
    for files, info in points:
        modes = info.get("incremental_refresh", {})
        lines.append(f"| {files:,} | {info['full_run_s']:.0f} s | {info['incremental_tick_s'] * 1000:.0f} ms | "
                     f"{info['incremental_s']:.0f} s | {info['incremental_s'] / info['full_run_s']:.0%} (target <= "
                     f"{TARGETS['incremental_share']:.0%}) | {modes.get('incremental', 0)} / {modes.get('full', 0)} |")
    if len(points) >= 2:
        growth = points[-1][1]["incremental_s"] / points[0][1]["incremental_s"]
        lines.append(f"\nGrowth from K={points[0][0]:,} to K={points[-1][0]:,}: {growth:.2f}x (target <= {TARGETS['incremental_flatness']}x).")
    lines += ["", "## A warm Spark Connect server (`make dev`)", ""]
    if "error" in connect:
        lines.append(f"Not measured: {connect['error']}")
    else:
        lines += [
            "Each run launched from the UI is a new process that starts its own JVM. Time to a first query from a fresh",
            f"Python process, median of {CONNECT_REPS} alternated (`benchmarks/spark_connect.py`):", "",
            "| session | process (start to exit) | to first query | Delta read of silver titles |", "|---|---|---|---|",
            f"| local JVM (today) | {connect['local_process_s']:.1f} s | {connect['local_first_query_s']:.1f} s | {connect['local_delta_read_s']:.2f} s |",
            f"| Spark Connect, warm server | {connect['connect_process_s']:.1f} s | {connect['connect_first_query_s']:.1f} s | {connect['connect_delta_read_s']:.2f} s |",
            "", f"The server itself took {connect['server_ready_s']:.0f} s to listen (paid once per `make dev`); "
            f"both sessions read the same rows: {connect['rows_equal']}.",
        ]
    lines += warm_lines(warm)
    # (c) of the warm-Spark comparison: the test suite's wall time takes an hour per measurement, so
    # it is measured on its own (a fresh clone's `.ci/run`) and kept in a file this report includes.
    if SUITE_TIME.exists():
        lines += ["", SUITE_TIME.read_text().strip()]
    lines += key_check_lines(keys)
    lines += ["", "## Sensor tick and definitions load", "",
              f"- One landing-zone sensor tick over 10,000 landed files (+10 new): {tick['tick_ms']:.0f} ms "
              f"(floor: os.walk + stat of the same tree {tick['walk_ms']:.0f} ms; target < {TARGETS['tick_s']:.0f} s).",
              f"- `dagster definitions validate`: {defs['validate_s']:.1f} s for the whole command; importing the code "
              f"location: {defs['import_s']:.1f} s, no JVM started (target < {TARGETS['defs_load_s']:.0f} s)."]
    lines += memory_lines(memory)
    runs = [(f"{size} full run", c["p"][0].info.get("steps", {})) for size, c in comparisons.items() if c["p"]]
    runs += [(f"K={files:,} one new file ({info.get('incremental_job')})", info.get("incremental_steps", {}))
             for files, info in sorted(curve_points.values(), key=lambda p: p[0])]
    lines += ["", "## Where a pipeline run's time goes", "",
              "Wall seconds of each Dagster step (event log, step start -> end), summed by layer; up to two steps run at once",
              "(`NETFLIX_STEP_THREADS`), so a run's steps add up to more than its run time. `checks`: the one check step per table.", ""]
    lines += profile_lines([(label, steps) for label, steps in runs if steps])
    if MEASURED.exists():
        lines += ["", MEASURED.read_text().strip()]
    lines += ["", f"## Where this run's {total / 60:.1f} minutes went", "", "| phase | time |", "|---|---|"]
    lines += [f"| {phase} | {seconds:.0f} s |" for phase, seconds in phases.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
