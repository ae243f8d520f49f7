"""Every crash point converges: a run killed with SIGKILL between any two of its commits,
followed by what the product runs next, leaves the lake an uninterrupted run leaves.

The killed run is a real process (`python -m netflix_assets_tests.lib.test_crash_points`),
killed by the fault hook `lib.faults` (`NETFLIX_FAULT_POINT`): no `finally`, no Dagster
failure handling, as when a container is restarted or the OOM killer fires. It is a Spark
Connect client of the suite's warm local server (`connect_url`), as a run launched under
`make dev` is: what dies is the run's process, not the Spark that committed for it; a JVM of its
own started and warmed for each killed run was most of this module's time. What the
product runs next is the same batch for the same day (what the landing-zone sensor
requests again for a batch whose run died, and for a `claimed` row whose run is gone),
then, for a first batch, a run of the next day, which must not take the file.

Two scenarios, on small files of the bundled tutorial titles (with a row without show_id,
so the quarantines are written, and overlapping show_ids, so a later file supersedes):
- first: batch [A] of day D into an empty lake, killed at each of its commits;
- keyed: batch [B] of D on a lake that holds A, as a keyed refresh (`lib.refresh`), killed
  between the two commits of silver and after gold.
The lake compared is bronze titles and the three quarantine/silver/gold titles tables, with
their `_source_file`s, plus the ledger (one row per file, same day and status).

Also here: a finished lake moved to another folder (its landing zone with it) re-materializes
its day to the same tables (the ledger's paths are relative to the landing zone).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from netflix_assets import step_threads
from netflix_assets.lib import clock, refresh
from netflix_assets.lib.faults import FAULT_ENV
from netflix_assets.resources.spark import REMOTE_ENV

from netflix_assets_tests.conftest import TUTORIAL_DIR
from netflix_assets_tests.lakehouse import Lakehouse

PROJECT = Path(__file__).resolve().parents[2]
SELECTED = [
    ["bronze", "netflix_titles"], ["quarantine", "bronze_netflix_titles"],
    ["silver", "netflix_titles"], ["quarantine", "netflix_titles"],
    ["gold", "netflix_titles"], ["quarantine", "gold_netflix_titles"],
]
TABLES = ["/".join(key) for key in SELECTED]
LEDGER = "bronze/_ingested_files"
# Columns that differ between two lakes by construction (wall clock, run ids, file times).
VOLATILE = {"_ingested_at", "_first_ingested", "discovered_at", "run_id", "modified_at", "etag"}
TODAY = clock.today()
DAY, NEXT_DAY = TODAY - dt.timedelta(days=1), TODAY

FIRST_POINTS = [
    "after_claim",
    "after_commit:bronze/netflix_titles",
    "after_commit:quarantine/bronze_netflix_titles",
    "after_commit:bronze/_ingested_files",
    "after_commit:silver/netflix_titles",
    "after_commit:quarantine/netflix_titles",
    "after_commit:gold/netflix_titles",
]
KEYED_POINTS = [
    "after_commit:silver/netflix_titles",
    "after_commit:quarantine/netflix_titles",
    "after_commit:gold/netflix_titles",
]


# ------------------------------------------------------------------ runs (both processes)


def _defs(root: Path) -> tuple[Lakehouse, dg.Definitions]:
    lake = Lakehouse.create(root, "http://127.0.0.1:9")  # no lookup is pulled
    job = dg.define_asset_job(
        "crash_scenario", selection=dg.AssetSelection.assets(*SELECTED).without_checks()
    )
    return lake, dg.Definitions.merge(lake.defs, dg.Definitions(jobs=[job]))


def run_batch(root: Path, day: dt.date, files: list[str] | None, keyed: bool, keys=None) -> dg.ExecuteInProcessResult:
    """The sensor's run of a batch of `files` for `day` (None: a whole-day run), restricted
    to the titles chain and without checks."""
    lake, defs = _defs(root)
    job = defs.resolve_job_def("crash_scenario")
    config = {"ops": {"bronze_netflix_titles": {"config": {"files": files}}}} if files is not None else None
    return step_threads.execute_in_process(  # with the local executor: ready steps in threads
        job,
        run_config=config,
        partition_key=day.isoformat(),
        instance=lake.instance,
        tags={refresh.REFRESH_TAG: refresh.INCREMENTAL} if keyed else {},
        asset_selection=[dg.AssetKey(k) for k in keys] if keys else None,
    )


@pytest.fixture(scope="module", autouse=True)
def keyed_refresh_of_small_partitions():
    """These partitions are far below MIN_ROWS: let the refresh take the keyed path anyway."""
    patch = pytest.MonkeyPatch()
    patch.setattr(refresh, "MIN_ROWS", 1)
    yield
    patch.undo()


def _main(spec: str) -> None:
    args = json.loads(spec)
    refresh.MIN_ROWS = 1  # as `keyed_refresh_of_small_partitions`, in the killed run's own process
    # After conftest's import, which clears it for the suite; through the environment, as the URL holds
    # the server's token (a command line is shown to every user of the machine).
    os.environ[REMOTE_ENV] = os.environ["NETFLIX_TEST_REMOTE"]
    run_batch(Path(args["root"]), dt.date.fromisoformat(args["day"]), args["files"], args["keyed"])
    sys.exit(3)  # reached only when the fault point was never hit


# ------------------------------------------------------------------ data and comparison


def _records() -> tuple[list[str], list[list[str]]]:
    with open(TUTORIAL_DIR / "netflix_titles.csv", newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        return next(reader), list(reader)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    header, rows = _records()
    blank = [("" if name == "show_id" else value) for name, value in zip(header, rows[0])]
    folder = tmp_path_factory.mktemp("sources")
    edited = [[(v + " (edited)" if n == "title" else v) for n, v in zip(header, r)] for r in rows[150:200]]
    return {
        "a.csv": _write(folder / "a.csv", header, rows[:200] + [blank]),
        "b.csv": _write(folder / "b.csv", header, edited + rows[200:350] + [blank]),
    }


def _normalized(value, roots: list[str]):
    if isinstance(value, str):
        for root in roots:
            value = value.replace(root, "<landing>")
    return value


def lake_state(root: Path, extra_roots: tuple[str, ...] = ()) -> dict[str, list]:
    """Every table's rows (all days), sorted, volatile columns dropped, landing roots masked."""
    lake = Lakehouse.create(root, "http://127.0.0.1:9")
    roots = [lake.landing.root_uri(), *extra_roots]
    state = {}
    for table in [*TABLES, LEDGER]:
        if not (root / table / "_delta_log").exists():
            state[table] = []
            continue
        rows = lake.rows(table)
        state[table] = sorted(
            tuple(sorted((k, repr(_normalized(v, roots))) for k, v in r.items() if k not in VOLATILE)) for r in rows
        )
    return state


def assert_converged(got: dict, want: dict) -> None:
    for table in want:
        assert len(got[table]) == len(want[table]) and got[table] == want[table], (
            f"{table}: {len(got[table])} rows, want {len(want[table])}; "
            f"first differences: {sorted(set(got[table]) ^ set(want[table]))[:3]}"
        )
    ledger = [dict(r) for r in got[LEDGER]]
    assert len({r["path"] for r in ledger}) == len(ledger), "a path is in the ledger twice"
    for day in {r["ingest_date"] for r in ledger}:
        rows = {t: sum(1 for r in got[t] if dict(r)["ingest_date"] == day) for t in TABLES}
        assert rows["bronze/netflix_titles"] == rows["silver/netflix_titles"] + rows["quarantine/netflix_titles"]


def _land(root: Path, source: Path) -> str:
    lake = Lakehouse.create(root, "http://127.0.0.1:9")
    return lake.land(source, source.name)


# ------------------------------------------------------------------ scenarios


@pytest.fixture(scope="module")
def reference(spark, sources, tmp_path_factory) -> dict:
    """The uninterrupted runs: batch [A] of D (then the next day), and from the lake holding A,
    batch [B] of D as a keyed refresh."""
    first = tmp_path_factory.mktemp("reference_first")
    a = _land(first, sources["a.csv"])
    assert run_batch(first, DAY, [a], keyed=True).success
    base = tmp_path_factory.mktemp("keyed_base") / "lake"
    shutil.copytree(first, base)
    assert run_batch(first, NEXT_DAY, None, keyed=False, keys=SELECTED[:2]).success
    keyed = tmp_path_factory.mktemp("reference_keyed") / "lake"
    shutil.copytree(base, keyed)
    b = _land(keyed, sources["b.csv"])
    result = run_batch(keyed, DAY, [b], keyed=True)
    assert result.success
    mats = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("silver_netflix_titles")}
    assert mats["silver/netflix_titles"]["refresh"].value == "incremental"
    return {
        "first": lake_state(first), "first_root": first, "base": base, "base_root": _root_uri(base),
        "keyed": lake_state(keyed, (_root_uri(base),)),
    }


def _root_uri(root: Path) -> str:
    return Lakehouse.create(root, "http://127.0.0.1:9").landing.root_uri()


class Kills:
    """The killed runs, one process each, started one case ahead: while a test re-runs its
    batch in this process, the next case's run is being killed in another."""

    def __init__(self, folder: Path, sources: dict[str, Path], remote: str):
        self.folder, self.sources, self.remote = folder, sources, remote
        self.cases = [("first", p) for p in FIRST_POINTS] + [("keyed", p) for p in KEYED_POINTS]
        self.started: dict[int, tuple] = {}

    def _start(self, i: int, base: Path | None) -> None:
        scenario, point = self.cases[i]
        root = self.folder / f"{i}-{scenario}" / "lake"
        if scenario == "keyed":
            shutil.copytree(base, root)
        uri = _land(root, self.sources["a.csv" if scenario == "first" else "b.csv"])
        spec = json.dumps({"root": str(root), "day": DAY.isoformat(), "files": [uri], "keyed": True})
        log = open(self.folder / f"{i}.log", "w+")
        process = subprocess.Popen(
            [sys.executable, "-m", "netflix_assets_tests.lib.test_crash_points", spec],
            cwd=PROJECT, env={**os.environ, FAULT_ENV: point, "NETFLIX_TEST_REMOTE": self.remote}, stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started[i] = (root, uri, process, log)

    def take(self, scenario: str, point: str, base: Path) -> tuple[Path, str]:
        """(lake, landed file URI) of the case, once its run has been killed at `point`."""
        i = self.cases.index((scenario, point))
        if i not in self.started:
            self._start(i, base)
        if i + 1 < len(self.cases) and i + 1 not in self.started:
            self._start(i + 1, base)
        root, uri, process, log = self.started[i]
        code = process.wait(timeout=600)
        log.seek(0)
        assert code == -signal.SIGKILL, f"{point}: the run was not killed there (exit {code}):\n{log.read()[-3000:]}"
        log.close()
        return root, uri

    def close(self) -> None:
        for _, _, process, log in self.started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()


@pytest.fixture(scope="module")
def kills(sources, tmp_path_factory, connect_url):
    runs = Kills(tmp_path_factory.mktemp("killed"), sources, connect_url)
    runs._start(0, None)  # killed while the reference lake is built
    yield runs
    runs.close()


@pytest.mark.parametrize("point", FIRST_POINTS)
def test_a_first_batch_killed_at_each_commit_converges(point, kills, reference):
    root, a = kills.take("first", point, reference["base"])
    # The sensor requests the batch again for its day; then the next day runs.
    assert run_batch(root, DAY, [a], keyed=True).success
    assert run_batch(root, NEXT_DAY, None, keyed=False, keys=SELECTED[:2]).success
    assert_converged(lake_state(root), reference["first"])


@pytest.mark.parametrize("point", KEYED_POINTS)
def test_a_keyed_refresh_killed_inside_converges(point, kills, reference):
    root, b = kills.take("keyed", point, reference["base"])
    assert run_batch(root, DAY, [b], keyed=True).success
    assert_converged(lake_state(root, (reference["base_root"],)), reference["keyed"])


def test_a_moved_lake_rebuilds_its_day_from_its_ledger(reference, tmp_path):
    """A lake and its landing zone moved elsewhere (the original gone) re-materialize the day."""
    moved = tmp_path / "moved"
    shutil.copytree(reference["first_root"], moved)
    hidden = reference["first_root"].with_name(reference["first_root"].name + "_hidden")
    old_root = _root_uri(reference["first_root"])
    reference["first_root"].rename(hidden)
    try:
        assert run_batch(moved, DAY, None, keyed=False).success
        assert_converged(lake_state(moved, (old_root,)), reference["first"])
    finally:
        hidden.rename(reference["first_root"])


if __name__ == "__main__":
    _main(sys.argv[1])
