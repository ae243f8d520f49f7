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

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest

from netflix_assets_tests.lakehouse import Lakehouse, check_results

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



class _Landing:
    def __init__(self, root: Path):
        self.root = root

    def root_uri(self) -> str:
        return f"file://{self.root}/raw/netflix_titles"


def test_a_table_state_does_not_depend_on_the_day_or_the_lake_it_ran_in(monkeypatch):
    """The checked-in digests hold on any day: the day is masked inside strings too (a pulled
    lookup file's path, `raw/api/<dataset>/<day>/...`), the lake's root wherever it appears."""
    monkeypatch.setattr(Lakehouse, "landing", property(lambda self: _Landing(self.root)))

    def lake(root: str, day: str) -> Lakehouse:
        found = Lakehouse(Path(root), defs=None, instance=None)
        found.rows = lambda table: [{
            "ingest_date": dt.date.fromisoformat(day), "_ingested_at": f"{day}T06:00:00",
            "_source_file": f"file://{root}/raw/api/netflix_cast/{day}/netflix_cast.csv", "cast": "James Franco",
        }]
        return found

    first, second = lake("/tmp/a", "2026-12-04"), lake("/tmp/b", "2027-01-15")
    assert first.state("bronze/netflix_cast", "2026-12-04") == second.state("bronze/netflix_cast", "2027-01-15")
    assert "'file://<root>/raw/api/netflix_cast/<day>/netflix_cast.csv'" in str(second.state("bronze/netflix_cast", "2027-01-15"))
