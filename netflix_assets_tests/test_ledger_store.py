"""The ledger read and written with delta-rs (the sensor's and the operator's side): no Spark."""

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from netflix_assets.bronze import ledger_store
from netflix_assets.bronze.ledger import FAILED, INGESTED, LEDGER_TABLE, status_code

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc)
DAY = NOW.date()
YESTERDAY = DAY - dt.timedelta(days=1)


@pytest.fixture
def lake(tmp_path):
    return tmp_path / "lake"


@pytest.fixture
def ledger(lake):
    return str(lake / "bronze" / LEDGER_TABLE)


def ingested(uri: str, paths: list[str], day: dt.date = DAY) -> None:
    """The ledger as bronze leaves it (written with delta-rs here, in the table's exact types)."""
    n = len(paths)
    table = pa.table(
        {
            "path": paths, "size": [113] * n, "modified_at": [NOW] * n, "etag": [None] * n,
            "sha256": [f"{i:064x}" for i in range(n)], "discovered_at": [NOW] * n, "ingest_date": [day] * n,
            "run_id": ["bronze-run"] * n, "status": [INGESTED] * n, "duplicate_of": [None] * n,
        },
        schema=ledger_store.arrow_schema(),
    )
    write_deltalake(uri, table, mode="append", partition_by=["ingest_date"])


def failure(path: str, day: dt.date = DAY, error: str = "bronze_netflix_titles: ValueError: bad") -> ledger_store.FailedFile:
    return ledger_store.FailedFile(path, 42, NOW - dt.timedelta(hours=1), day, "run-9", error)


def test_the_arrow_schema_is_the_ledger_schema():
    schema = ledger_store.arrow_schema()
    assert schema.names == ["path", "size", "modified_at", "etag", "sha256", "discovered_at", "ingest_date",
                            "run_id", "status", "duplicate_of"]
    assert schema.field("modified_at").type == pa.timestamp("us", "UTC") and schema.field("size").type == pa.int64()


def test_no_ledger_yet_reads_empty(ledger):
    assert ledger_store.claimed_paths(ledger) == set()
    assert ledger_store.read_ledger(ledger) == []
    assert ledger_store.requeue(ledger, ["file:///zone/a.csv"]) == []


def test_record_failed_creates_the_partitioned_table_and_is_idempotent(ledger):
    written = ledger_store.record_failed(ledger, [failure("file:///zone/a.csv")], now=NOW)
    assert written == ["file:///zone/a.csv"]
    table = DeltaTable(ledger)
    assert table.metadata().partition_columns == ["ingest_date"]
    [row] = ledger_store.read_ledger(ledger)
    assert row["status"] == f"{FAILED}: bronze_netflix_titles: ValueError: bad" and status_code(row["status"]) == FAILED
    assert (row["run_id"], row["size"], row["ingest_date"], row["discovered_at"]) == ("run-9", 42, DAY, NOW)
    assert row["sha256"] is None and row["modified_at"] == NOW - dt.timedelta(hours=1)
    # Written again (the sensor's next tick after an unacknowledged write): nothing added.
    assert ledger_store.record_failed(ledger, [failure("file:///zone/a.csv")], now=NOW) == []
    assert len(ledger_store.read_ledger(ledger)) == 1


def test_record_failed_appends_to_a_ledger_bronze_wrote(ledger):
    ingested(ledger, ["file:///zone/ok.csv"], day=YESTERDAY)
    ledger_store.record_failed(ledger, [failure("file:///zone/bad.csv"), failure("file:///zone/ok.csv")], now=NOW)
    assert ledger_store.claimed_paths(ledger) == {"file:///zone/ok.csv", "file:///zone/bad.csv"}
    assert [r["path"] for r in ledger_store.read_ledger(ledger, day=DAY)] == ["file:///zone/bad.csv"]
    assert [r["status"] for r in ledger_store.read_ledger(ledger, day=YESTERDAY)] == [INGESTED]
    assert [r["path"] for r in ledger_store.read_ledger(ledger, status=FAILED)] == ["file:///zone/bad.csv"]


def test_a_multiline_error_is_one_bounded_line(ledger):
    ledger_store.record_failed(ledger, [failure("file:///zone/a.csv", error="Traceback\n  line 1\n" + "x" * 2000)], now=NOW)
    [row] = ledger_store.read_ledger(ledger)
    assert "\n" not in row["status"] and len(row["status"]) < 600


ODD = [
    "file:///zone/it's.csv",
    "file:///zone/back\\slash.csv",
    "file:///zone/q?#%_.csv",
    "file:///zone/line\nbreak.csv",
    "file:///zone/caf\udce9.csv",  # not UTF-8: stored as caf\xe9
    "file:///zone/" + "y" * 3000 + ".csv",
]


def test_requeue_deletes_only_the_failed_rows_of_the_given_paths(ledger):
    ingested(ledger, ["file:///zone/ok.csv", "file:///zone/it's fine.csv"])
    ledger_store.record_failed(ledger, [failure(p) for p in ODD], now=NOW)
    stored = ledger_store.claimed_paths(ledger)
    assert "file:///zone/caf\\xe9.csv" in stored and all(p.isprintable() or "\n" in p for p in stored)
    # An ingested file is never re-queued; odd names are matched exactly (quotes, %, \, newline).
    assert ledger_store.requeue(ledger, ["file:///zone/ok.csv"]) == []
    again = ledger_store.requeue(ledger, ODD[:4] + ["file:///zone/caf\udce9.csv"])
    assert len(again) == 5
    assert ledger_store.claimed_paths(ledger) == {
        "file:///zone/ok.csv", "file:///zone/it's fine.csv", ledger_store.ledger_path(ODD[5])
    }


def test_show_groups_a_days_files_by_status(ledger, lake, capsys):
    ingested(ledger, ["file:///zone/b.csv", "file:///zone/a.csv"])
    ledger_store.record_failed(ledger, [failure("file:///zone/c.csv")], now=NOW)
    ledger_store.record_failed(ledger, [failure("file:///zone/old.csv", day=YESTERDAY)], now=NOW)
    assert ledger_store.main(["--lake", str(lake), "show", "--date", DAY.isoformat()]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"ledger {DAY}: 3 file(s)",
        "  failed    1",
        "  ingested  2",
        "file:///zone/c.csv  failed: bronze_netflix_titles: ValueError: bad",
        "file:///zone/a.csv  ingested",
        "file:///zone/b.csv  ingested",
    ]
    assert ledger_store.main(["--lake", str(lake), "show", "--date", DAY.isoformat(), "--status", "failed"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"ledger {DAY}: 1 file(s)"


def test_requeue_from_the_command_line(ledger, lake, capsys, monkeypatch):
    ledger_store.record_failed(ledger, [failure("file:///zone/a.csv")], now=NOW)
    assert ledger_store.main(["--lake", str(lake), "requeue", "file:///zone/a.csv", "file:///zone/nope.csv"]) == 1
    captured = capsys.readouterr()
    assert "re-queued file:///zone/a.csv" in captured.out and "file:///zone/nope.csv" in captured.err
    assert ledger_store.claimed_paths(ledger) == set()
    # The lake of the deployment by default: NETFLIX_LAKE_URI.
    ledger_store.record_failed(ledger, [failure("file:///zone/b.csv")], now=NOW)
    monkeypatch.setenv("NETFLIX_LAKE_URI", str(lake))
    monkeypatch.delenv("NETFLIX_DEPLOYMENT", raising=False)
    assert ledger_store.main(["requeue", "file:///zone/b.csv"]) == 0


def test_the_failed_files_check_warns_with_paths_errors_and_the_requeue_command(ledger):
    import dagster as dg

    from netflix_assets.bronze.checks import failed_files_result

    ingested(ledger, ["file:///zone/ok.csv"])
    ledger_store.record_failed(ledger, [failure("file:///zone/bad.csv")], now=NOW)
    result = failed_files_result(ledger_store.read_ledger(ledger, day=DAY))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["failed_files"].value == 1
    assert result.metadata["files"].value == [
        {"path": "file:///zone/bad.csv", "error": "bronze_netflix_titles: ValueError: bad", "run_id": "run-9"}
    ]
    assert "make requeue" in result.description and "ledger_store requeue" in result.description
    clean = failed_files_result(ledger_store.read_ledger(ledger, day=YESTERDAY))
    assert clean.passed and clean.metadata["failed_files"].value == 0 and "files" not in clean.metadata


def test_the_failed_files_check_is_declared_for_titles_only():
    from netflix_assets.definitions import defs

    names = {}
    for checks_def in defs.asset_checks:
        for spec in checks_def.check_specs:
            names.setdefault(spec.asset_key.to_user_string(), set()).add(spec.name)
    assert "no_failed_files" in names["bronze/netflix_titles"]
    assert not any("no_failed_files" in checks for key, checks in names.items() if key != "bronze/netflix_titles")
