"""`make demo` as a new user runs it, on a temporary instance and lake: a run that fails says
FAILED first, names the failed step and its error, and exits non-zero; a successful one is
short (what was built, how many checks and why that many, where to look next)."""

import os
import subprocess
from pathlib import Path

from netflix_assets_tests.conftest import today_iso

PROJECT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def make_demo(tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "NETFLIX_LAKE_URI": str(tmp_path / "lake")}
    return subprocess.run(
        ["make", "--no-print-directory", "demo"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=1200
    )


def test_a_failed_demo_says_failed_first_names_the_step_and_exits_non_zero(tmp_path):
    # Arranged to fail: a file stands where bronze titles' Delta table goes.
    (tmp_path / "lake" / "bronze").mkdir(parents=True)
    (tmp_path / "lake" / "bronze" / "netflix_titles").write_text("not a table")
    demo = make_demo(tmp_path)
    out = demo.stdout + demo.stderr
    assert demo.returncode != 0, out
    summary = demo.stdout[demo.stdout.index("FAILED: ") :]
    assert summary.startswith(f"FAILED: lakehouse_job for ingest_date={today_iso()}"), out
    assert "step bronze_netflix_titles failed: " in summary and "DELTA_CANNOT_CREATE_LOG_PATH" in summary, out
    assert "step(s) not run: they need the output of a failed step" in summary, out
    assert "http://127.0.0.1:3000/runs/" in summary, out
    assert "Lakehouse built" not in out and "Not executing" not in out, out


def test_a_successful_demo_prints_a_short_summary_of_what_it_built(tmp_path):
    demo = make_demo(tmp_path)
    out = demo.stdout + demo.stderr
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "demo_output.txt").write_text(out)
    assert demo.returncode == 0, out
    lines = out.splitlines()
    # The jars are resolved by the suite's own session by now, as on a user's second run.
    assert len(lines) <= 40, f"{len(lines)} lines:\n{out}"
    assert any(line.startswith("Lakehouse built for ingest_date=") for line in lines), out
    assert any(line.startswith("checks: ") and " 0 failed" in line for line in lines), out
    assert not any(noise in out for noise in ("WARN Utils", "log4j", "NativeCodeLoader", "incubator", "Ivy")), out
    assert "FAILED" not in out, out
    # Every column of every table built has its lineage declared (`dagster/column_lineage`), every
    # declared column and every source column it names exists: quarantine tables and partition columns
    # included (the file ledger is not an asset: no lineage).
    checked = _lineage_differences(tmp_path / "lake")
    assert checked["differences"] == {} and checked["tables"] >= 40, checked


def _lineage_differences(lake: Path) -> dict:
    from deltalake import DeltaTable

    from netflix_assets.definitions import defs
    from netflix_assets.lib.lineage import declared_graph

    graph, differences = declared_graph(defs.assets), {}
    keys = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())
    built = {key: {f.name for f in DeltaTable(str(lake / key)).schema().fields}
             for key in keys if (lake / key / "_delta_log").is_dir()}  # not the raw files, the catalog registration
    for key, columns in built.items():
        declared = graph.get(key, {})
        sources = {f"{table}.{column}" for deps in declared.values() for table, column in deps
                   if table in built and column not in built[table]}
        if columns != set(declared) or sources:
            differences[key] = {"undeclared": sorted(columns - set(declared)), "not in the table": sorted(set(declared) - columns),
                                "sources not in their table": sorted(sources)}
    return {"tables": len(built), "differences": differences}
