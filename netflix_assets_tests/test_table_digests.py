"""Every table of a whole run on the bundled data, as checked in: a restructuring that changes no
behaviour leaves each table's rows (and the checks' verdicts) exactly as they were.

The expected digests were written by the code before the restructuring of issue 23 (thin assets,
one Delta module, one registry per concept). A change that is meant to alter a table's rows
writes them again, and its review reads the diff of `table_digests.json`:

    NETFLIX_WRITE_DIGESTS=1 .venv/bin/python -m pytest netflix_assets_tests/test_table_digests.py

Each digest is over the table's rows as `Lakehouse.state` gives them (delta-rs reads, columns
that record when the run happened dropped, the lake's root and the day masked), so it does not
depend on where or on which day the suite runs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from netflix_assets_tests.lakehouse import check_results

EXPECTED = Path(__file__).resolve().parent / "table_digests.json"


def _digests(shared) -> dict:
    lake = shared.lake
    tables = {}
    for table in lake.tables():
        state = lake.state(table, shared.day)
        tables[table] = {"rows": len(state), "sha256": hashlib.sha256(repr(state).encode()).hexdigest()}
    return {"tables": tables, "checks": check_results(shared.result)}


def test_every_table_of_the_bundled_run_is_as_checked_in(tutorial_lake):
    got = _digests(tutorial_lake)
    if os.environ.get("NETFLIX_WRITE_DIGESTS") == "1":
        EXPECTED.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {EXPECTED.name}")
    want = json.loads(EXPECTED.read_text())
    assert sorted(got["tables"]) == sorted(want["tables"])
    changed = {t: (got["tables"][t], want["tables"][t]) for t in want["tables"] if got["tables"][t] != want["tables"][t]}
    assert not changed, f"{len(changed)} table(s) differ from the checked-in run: {changed}"
    assert got["checks"] == want["checks"]
