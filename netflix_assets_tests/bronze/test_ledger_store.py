"""The ledger read and written with delta-rs (the sensor's and the operator's side): no Spark."""

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from netflix_assets.bronze import ledger_store
from netflix_assets.bronze.ledger import CLAIMED, FAILED, INGESTED, LEDGER_TABLE, status_code

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.timezone.utc)
DAY = NOW.date()
YESTERDAY = DAY - dt.timedelta(days=1)
ROOT = "file:///zone"  # the landing zone's root: the ledger stores paths relative to it


@pytest.fixture
def lake(tmp_path):
    return tmp_path / "lake"


@pytest.fixture
def ledger(lake):
    return str(lake / "bronze" / LEDGER_TABLE)


def ingested(uri: str, paths: list[str], day: dt.date = DAY, status: str = INGESTED, run_id: str = "bronze-run") -> None:
    """The ledger as bronze leaves it, `paths` as stored (relative to ROOT; absolute in a ledger
    written before paths were relative): written with delta-rs here, in the table's exact types."""
    n = len(paths)
    table = pa.table(
        {
            "path": paths, "size": [113] * n, "modified_at": [NOW] * n, "etag": [None] * n,
            "sha256": [f"{i:064x}" for i in range(n)], "discovered_at": [NOW] * n, "ingest_date": [day] * n,
            "run_id": [run_id] * n, "status": [status] * n, "duplicate_of": [None] * n,
        },
        schema=ledger_store.arrow_schema(),
    )
    write_deltalake(uri, table, mode="append", partition_by=["ingest_date"])


def stored(uri: str) -> dict[str, str]:
    """path -> status, as the table holds them."""
    return {r["path"]: r["status"] for r in DeltaTable(uri).to_pyarrow_table(columns=["path", "status"]).to_pylist()}


def failure(path: str, day: dt.date = DAY, error: str = "bronze_netflix_titles: ValueError: bad") -> ledger_store.FailedFile:
    return ledger_store.FailedFile(path, 42, NOW - dt.timedelta(hours=1), day, "run-9", error)


def test_the_arrow_schema_is_the_ledger_schema():
    schema = ledger_store.arrow_schema()
    assert schema.names == ["path", "size", "modified_at", "etag", "sha256", "discovered_at", "ingest_date",
                            "run_id", "status", "duplicate_of"]
    assert schema.field("modified_at").type == pa.timestamp("us", "UTC") and schema.field("size").type == pa.int64()


def test_no_ledger_yet_reads_empty(ledger):
    assert ledger_store.claimed_paths(ledger, ROOT) == set()
    assert ledger_store.read_ledger(ledger, ROOT) == []
    assert ledger_store.read_for_sensor(ledger, ROOT) == ledger_store.LedgerSnapshot(set(), [])
    assert ledger_store.requeue(ledger, ["file:///zone/a.csv"], ROOT) == []


def test_record_failed_creates_the_partitioned_table_stores_relative_paths_and_is_idempotent(ledger):
    written = ledger_store.record_failed(ledger, [failure("file:///zone/sub/a.csv")], ROOT, now=NOW)
    assert written == ["file:///zone/sub/a.csv"]
    table = DeltaTable(ledger)
    assert table.metadata().partition_columns == ["ingest_date"]
    assert list(stored(ledger)) == ["sub/a.csv"], "stored relative to the landing root"
    [row] = ledger_store.read_ledger(ledger, ROOT)
    assert row["path"] == "file:///zone/sub/a.csv", "read back absolute"
    assert row["status"] == f"{FAILED}: bronze_netflix_titles: ValueError: bad" and status_code(row["status"]) == FAILED
    assert (row["run_id"], row["size"], row["ingest_date"], row["discovered_at"]) == ("run-9", 42, DAY, NOW)
    assert row["sha256"] is None and row["modified_at"] == NOW - dt.timedelta(hours=1)
    # Written again (the sensor's next tick after an unacknowledged write): nothing added.
    assert ledger_store.record_failed(ledger, [failure("file:///zone/sub/a.csv")], ROOT, now=NOW) == []
    assert len(ledger_store.read_ledger(ledger, ROOT)) == 1


def test_record_failed_adds_new_files_replaces_claims_and_leaves_final_rows(ledger):
    ingested(ledger, ["ok.csv"], day=YESTERDAY)
    ingested(ledger, ["file:///zone/legacy.csv"], day=YESTERDAY)  # before paths were relative
    ingested(ledger, ["stranded.csv"], status=CLAIMED, run_id="run-1")
    files = ["file:///zone/bad.csv", "file:///zone/ok.csv", "file:///zone/legacy.csv", "file:///zone/stranded.csv"]
    written = ledger_store.record_failed(ledger, [failure(p) for p in files], ROOT, now=NOW)
    assert written == ["file:///zone/bad.csv", "file:///zone/stranded.csv"]
    rows = stored(ledger)
    assert len(rows) == 4 and (rows["ok.csv"], rows["file:///zone/legacy.csv"]) == (INGESTED, INGESTED)
    assert status_code(rows["bad.csv"]) == FAILED and status_code(rows["stranded.csv"]) == FAILED
    [claim] = ledger_store.read_ledger(ledger, ROOT, status=FAILED, day=DAY)[1:]
    assert (claim["path"], claim["run_id"], claim["size"]) == ("file:///zone/stranded.csv", "run-9", 113)
    assert ledger_store.read_for_sensor(ledger, ROOT).open_claims == []


def test_a_ledger_copied_with_its_landing_zone_resolves_under_the_new_root(ledger):
    ingested(ledger, ["a.csv", "2026/11/b.csv"])
    ingested(ledger, ["c.csv"], day=YESTERDAY, status=CLAIMED, run_id="run-1")
    ingested(ledger, ["file:///zone/legacy.csv", "abfss://elsewhere/x.csv"], day=YESTERDAY)  # absolute: as they are
    moved = "abfs://copy/raw/netflix_titles"
    expected = {f"{moved}/a.csv", f"{moved}/2026/11/b.csv", f"{moved}/c.csv", "file:///zone/legacy.csv",
                "abfss://elsewhere/x.csv"}
    assert ledger_store.claimed_paths(ledger, moved + "/") == expected
    assert {r["path"] for r in ledger_store.read_ledger(ledger, moved)} == expected
    snapshot = ledger_store.read_for_sensor(ledger, moved)
    assert snapshot.paths == expected
    assert snapshot.open_claims == [ledger_store.OpenClaim(f"{moved}/c.csv", YESTERDAY, "run-1")]


def test_a_multiline_error_is_one_bounded_line(ledger):
    ledger_store.record_failed(ledger, [failure("file:///zone/a.csv", error="Traceback\n  line 1\n" + "x" * 2000)], ROOT, now=NOW)
    [row] = ledger_store.read_ledger(ledger, ROOT)
    assert "\n" not in row["status"] and len(row["status"]) < 600


ODD = [
    "file:///zone/it's.csv",
    "file:///zone/back\\slash.csv",
    "file:///zone/q?#%_.csv",
    "file:///zone/line\nbreak.csv",
    "file:///zone/caf\udce9.csv",  # not UTF-8: stored as caf\xe9
    "file:///zone/" + "y" * 3000 + ".csv",
]


def by_status(uri: str) -> dict[str, set[str]]:
    """status code -> the paths (absolute) of its rows; a re-queued row is `claimed` with no run."""
    out: dict[str, set[str]] = {}
    for row in ledger_store.read_ledger(uri, ROOT, None, columns=["path", "status", "run_id"]):
        code = status_code(row["status"])
        out.setdefault(code if code != CLAIMED or row["run_id"] else "requeued", set()).add(row["path"])
    return out


def test_requeue_turns_only_the_failed_rows_of_the_given_paths_into_claims_of_their_day(ledger):
    ingested(ledger, ["ok.csv", "it's fine.csv"])
    ledger_store.record_failed(ledger, [failure(p) for p in ODD], ROOT, now=NOW)
    paths = ledger_store.claimed_paths(ledger, ROOT)
    assert "file:///zone/caf\\xe9.csv" in paths and all(p.isprintable() or "\n" in p for p in paths)
    # An ingested file is never re-queued; odd names are matched exactly (quotes, %, \, newline).
    assert ledger_store.requeue(ledger, ["file:///zone/ok.csv"], ROOT) == []
    again = ledger_store.requeue(ledger, ODD[:4] + ["file:///zone/caf\udce9.csv"], ROOT)
    assert len(again) == 5
    statuses = by_status(ledger)
    assert statuses[INGESTED] == {"file:///zone/ok.csv", "file:///zone/it's fine.csv"}
    assert statuses[FAILED] == {ledger_store.ledger_path(ODD[5])} and len(statuses["requeued"]) == 5


def test_requeue_takes_relative_paths_local_paths_and_legacy_absolute_rows(ledger):
    ledger_store.record_failed(ledger, [failure("file:///zone/d/a.csv"), failure("file:///zone/b.csv")], ROOT, now=NOW)
    ingested(ledger, ["file:///zone/old.csv"], status="failed: boom")  # written before paths were relative
    done = ledger_store.requeue(ledger, ["d/a.csv", "/zone/b.csv", "file:///zone/old.csv"], ROOT)
    assert done == ["file:///zone/b.csv", "file:///zone/d/a.csv", "file:///zone/old.csv"]
    assert by_status(ledger) == {"requeued": set(done)}
    assert {r["ingest_date"] for r in ledger_store.read_ledger(ledger, ROOT, None, columns=["path", "ingest_date"])} == {DAY}


def test_show_groups_a_days_files_by_status(ledger, lake, capsys):
    ingested(ledger, ["b.csv", "a.csv"])
    ledger_store.record_failed(ledger, [failure("file:///zone/c.csv")], ROOT, now=NOW)
    ledger_store.record_failed(ledger, [failure("file:///zone/old.csv", day=YESTERDAY)], ROOT, now=NOW)
    assert ledger_store.main(["--lake", str(lake), "--landing", "/zone", "show", "--date", DAY.isoformat()]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"ledger {DAY}: 3 file(s)",
        "  failed    1",
        "  ingested  2",
        "file:///zone/c.csv  failed: bronze_netflix_titles: ValueError: bad",
        "file:///zone/a.csv  ingested",
        "file:///zone/b.csv  ingested",
    ]
    assert ledger_store.main(["--lake", str(lake), "--landing", ROOT, "show", "--date", DAY.isoformat(), "--status", "failed"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"ledger {DAY}: 1 file(s)"


def test_requeue_from_the_command_line(ledger, lake, capsys, monkeypatch):
    ledger_store.record_failed(ledger, [failure("file:///zone/a.csv")], ROOT, now=NOW)
    assert ledger_store.main(["--lake", str(lake), "--landing", ROOT, "requeue", "a.csv", "nope.csv"]) == 1
    captured = capsys.readouterr()
    assert "re-queued file:///zone/a.csv" in captured.out and "file:///zone/nope.csv" in captured.err
    assert by_status(ledger) == {"requeued": {"file:///zone/a.csv"}}
    # The lake and landing zone of the deployment by default: NETFLIX_LAKE_URI, its raw/netflix_titles.
    landing = f"file://{lake}/raw/netflix_titles"
    ledger_store.record_failed(ledger, [failure(f"{landing}/b.csv")], landing, now=NOW)
    assert sorted(stored(ledger)) == ["a.csv", "b.csv"]
    monkeypatch.setenv("NETFLIX_LAKE_URI", str(lake))
    monkeypatch.delenv("NETFLIX_LANDING_URI", raising=False)
    monkeypatch.delenv("NETFLIX_DEPLOYMENT", raising=False)
    assert ledger_store.main(["requeue", f"{landing}/b.csv"]) == 0


def test_the_failed_files_check_warns_with_paths_errors_and_the_requeue_command(ledger):
    import dagster as dg

    from netflix_assets.bronze.checks import failed_files_result

    ingested(ledger, ["ok.csv"])
    ledger_store.record_failed(ledger, [failure("file:///zone/bad.csv")], ROOT, now=NOW)
    # The check reads the partition with Spark: paths as stored, which `requeue` takes as they are.
    rows = DeltaTable(ledger).to_pyarrow_table(filters=[("ingest_date", "=", DAY)]).to_pylist()
    result = failed_files_result(rows)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["failed_files"].value == 1
    assert result.metadata["files"].value == [
        {"path": "bad.csv", "error": "bronze_netflix_titles: ValueError: bad", "run_id": "run-9"}
    ]
    assert "make requeue" in result.description and "ledger_store requeue" in result.description
    clean = failed_files_result(ledger_store.read_ledger(ledger, ROOT, day=YESTERDAY))
    assert clean.passed and clean.metadata["failed_files"].value == 0 and "files" not in clean.metadata


def test_the_failed_files_check_is_declared_for_titles_only():
    from netflix_assets.definitions import defs

    names = {}
    for checks_def in defs.asset_checks:
        for spec in checks_def.check_specs:
            names.setdefault(spec.asset_key.to_user_string(), set()).add(spec.name)
    assert "no_failed_files" in names["bronze/netflix_titles"]
    assert not any("no_failed_files" in checks for key, checks in names.items() if key != "bronze/netflix_titles")


def test_a_fragmented_ledger_is_compacted_and_a_merge_that_loses_to_it_is_a_retried_conflict(ledger):
    # Every run's MERGEs add files, and the sensor reads them all on every tick.
    from netflix_assets.lib.delta import is_conflict

    for i in range(6):
        ingested(ledger, [f"{DAY}/f{i}.csv"])
    ingested(ledger, ["old.csv"], day=YESTERDAY)
    before = ledger_store.read_for_sensor(ledger, ROOT)
    assert ledger_store.compact_if_fragmented(ledger, slack=5) is None, "7 files for 2 days: not yet"
    stale = DeltaTable(ledger)  # a run's MERGE that read the ledger before the compaction
    assert ledger_store.compact_if_fragmented(ledger, slack=0) == {"files_before": 7, "files_removed": 6, "files_added": 1}
    assert len(DeltaTable(ledger).file_uris()) == 2
    assert ledger_store.read_for_sensor(ledger, ROOT) == before
    assert not before.fragmented and ledger_store._fragmented(DeltaTable(stale.table_uri), slack=-3)
    row = pa.table({"path": [f"{DAY}/f3.csv"], "ingest_date": [DAY], "status": [CLAIMED]}).cast(
        pa.schema([ledger_store.arrow_schema().field(n) for n in ("path", "ingest_date", "status")]))
    with pytest.raises(Exception) as lost:
        stale.merge(row, predicate="t.path = s.path", source_alias="s", target_alias="t").when_matched_update(
            {"status": "s.status"}).execute()
    assert is_conflict(lost.value), "retried by lib.delta.committed, as any lost race of a ledger MERGE"
