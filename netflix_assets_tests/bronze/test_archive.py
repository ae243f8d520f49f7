"""Archiving ingested files out of the landing zone (Auto Loader's cleanSource=MOVE), on
local disk and on Azure Blob (Azurite): the job run as Dagster runs it, the ledger
written with delta-rs as bronze leaves it (no Spark)."""

import datetime as dt
import hashlib
import os

import dagster as dg
import fsspec
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from netflix_assets.bronze import archive
from netflix_assets.bronze.ledger import LEDGER_TABLE, refusal, to_ledger_path
from netflix_assets.resources.lake import LakeResource
from netflix_assets.resources.landing import LandingZoneResource

from netflix_assets_tests.resources.test_landing_zone import azure_zone, land_raw, zone_prefix

NOW = dt.datetime.now(dt.timezone.utc)
RETENTION_DAYS = 3
LEDGER_ARROW = pa.schema(
    [
        ("path", pa.string()), ("size", pa.int64()), ("modified_at", pa.timestamp("us", "UTC")),
        ("etag", pa.string()), ("sha256", pa.string()), ("discovered_at", pa.timestamp("us", "UTC")),
        ("ingest_date", pa.date32()), ("run_id", pa.string()), ("status", pa.string()), ("duplicate_of", pa.string()),
    ]
)
# name -> (days since discovery, status): the ledger after a few days of ingestion.
FILES = {
    "old.csv": (5, "ingested"),
    "2026/11/nested.csv": (4, "ingested"),
    "copy.csv": (5, "duplicate"),
    "bad_header.csv": (5, refusal("unknown_header", "'id,name'")),
    "young.csv": (1, "ingested"),  # within the retention: stays
    "failed.csv": (5, refusal("failed", "the run kept failing")),  # waits to be re-queued: stays
    "claimed.csv": (5, "claimed"),  # a run is reading it (or the sensor requests it again): stays
}
MOVED = ["2026/11/nested.csv", "bad_header.csv", "copy.csv", "old.csv"]
KEPT = ["claimed.csv", "failed.csv", "young.csv"]


def write_ledger(lake: LakeResource, rows: list[dict], root: str = "") -> None:
    """The ledger of `rows` (absolute paths), stored relative to the landing root `root` as bronze
    stores them (absolute without a root: a ledger written before paths were relative)."""
    rows = [{**r, "path": to_ledger_path(r["path"], root)} if root else r for r in rows]
    columns = {name: [r.get(name) for r in rows] for name in LEDGER_ARROW.names}
    write_deltalake(lake.table_uri("bronze", LEDGER_TABLE), pa.table(columns, schema=LEDGER_ARROW), partition_by=["ingest_date"])


def ledger_row(uri: str, days_ago: float, status: str, content: bytes = b"x\n1\n") -> dict:
    """The row bronze leaves for a file of `content` (its size and hash) discovered `days_ago`."""
    discovered = NOW - dt.timedelta(days=days_ago)
    return {
        "path": uri, "size": len(content), "sha256": hashlib.sha256(content).hexdigest(), "discovered_at": discovered,
        "ingest_date": discovered.date(), "status": status, "run_id": "r",
    }


@pytest.fixture(params=["local", "azurite"])
def landed(request, tmp_path, monkeypatch):
    """(landing zone with a 3-day retention, lake, ledger rows by name): FILES landed and recorded."""
    if request.param == "local":
        zone = LandingZoneResource(uri=str(tmp_path / "landing"), archive_after_days=RETENTION_DAYS)
    else:
        container = f"archive{abs(hash(tmp_path)) % 10**8}"
        zone = azure_zone(request.getfixturevalue("azurite"), monkeypatch, container, archive_after_days=RETENTION_DAYS)
    lake = LakeResource(root=str(tmp_path / "lake"))
    rows = {}
    for name, (days, status) in FILES.items():
        land_raw(zone, name, f"x\n{name}\n".encode())
        rows[name] = ledger_row(f"{zone_prefix(zone)}/{name}", days, status, f"x\n{name}\n".encode())
    for file in zone.list_files():  # what the listing showed when the file was claimed
        rows[file.uri.removeprefix(zone_prefix(zone) + "/")].update(modified_at=file.modified, etag=file.etag)
    write_ledger(lake, list(rows.values()), zone.root_uri())
    return zone, lake, rows


def run_job(zone: LandingZoneResource, lake: LakeResource, messages: list | None = None) -> dict:
    with dg.DagsterInstance.ephemeral() as instance:
        result = archive.archive_landed_files.execute_in_process(resources={"landing": zone, "lake": lake}, instance=instance)
        assert result.success
        if messages is not None:  # what the run logged, as the UI shows it
            messages.extend(entry.user_message for entry in instance.all_logs(result.run_id))
        return result.output_for_node("move_settled_files_to_archive")


def names(zone: LandingZoneResource) -> list[str]:
    prefix = zone_prefix(zone) + "/"
    return sorted(f.uri[len(prefix) :] for f in zone.list_files())


def read(zone: LandingZoneResource, uri: str) -> bytes:
    with fsspec.open(uri, "rb", **zone.storage_options()) as handle:
        return handle.read()


def test_files_are_archived_after_the_retention_and_not_before(landed):
    zone, lake, rows = landed
    assert run_job(zone, lake) == {"moved": 4, "due": 4, "not_due": 1, "kept": 2, "waiting_for_runs": 0}
    assert names(zone) == KEPT, "the listing no longer shows archived files"
    for name in MOVED:
        row = rows[name]
        target = zone.archived_uri(row["path"], row["ingest_date"])
        assert target == f"{zone_prefix(zone)}/_archive/{row['ingest_date'].isoformat()}/{name}"
        assert read(zone, target) == f"x\n{name}\n".encode()
        assert not zone.exists(row["path"]) and zone.exists(target)


def test_a_second_run_moves_nothing_and_changes_nothing(landed):
    zone, lake, rows = landed
    run_job(zone, lake)
    archived = {name: read(zone, zone.archived_uri(rows[name]["path"], rows[name]["ingest_date"])) for name in MOVED}
    assert run_job(zone, lake) == {"moved": 0, "due": 0, "not_due": 1, "kept": 2, "waiting_for_runs": 0}
    assert names(zone) == KEPT
    assert {name: read(zone, zone.archived_uri(rows[name]["path"], rows[name]["ingest_date"])) for name in MOVED} == archived


def test_archive_skips_what_is_already_moved_and_reports_what_is_gone(landed, caplog):
    zone, _, rows = landed
    due = [rows["old.csv"], rows["copy.csv"]]
    assert [uri for uri, _ in zone.archive(due, NOW)] == [rows["old.csv"]["path"], rows["copy.csv"]["path"]]
    assert zone.archive(due, NOW) == []  # already in the archive: skipped
    fs, _ = zone.filesystem()
    fs.rm_file(fs._strip_protocol(zone.archived_uri(rows["old.csv"]["path"], rows["old.csv"]["ingest_date"])))
    assert zone.archive(due, NOW) == []  # gone from both places: reported, not raised
    assert "neither in the landing zone nor" in caplog.text
    assert zone.archive([rows["young.csv"]], NOW) == [], "archive itself never moves a file before its retention"


def test_a_file_landed_again_under_an_archived_name_is_left_alone(landed, caplog):
    zone, _, rows = landed
    row = rows["old.csv"]
    zone.archive([row], NOW)
    land_raw(zone, "old.csv", b"x\nnew content\n")
    assert zone.archive([row], NOW) == []
    assert "landed again" in caplog.text
    assert read(zone, row["path"]) == b"x\nnew content\n"
    assert read(zone, zone.archived_uri(row["path"], row["ingest_date"])) == b"x\nold.csv\n"


def test_an_interrupted_azure_move_is_finished(azurite, monkeypatch):
    zone = azure_zone(azurite, monkeypatch, "interrupted", archive_after_days=RETENTION_DAYS)
    land_raw(zone, "a.csv", b"x\n1\n")
    row = ledger_row(f"{zone_prefix(zone)}/a.csv", 5, "ingested")
    fs, _ = zone.filesystem()
    source, target = fs._strip_protocol(row["path"]), fs._strip_protocol(zone.archived_uri(row["path"], row["ingest_date"]))
    # What `archive` leaves when the process dies between the copy and the delete:
    fs.cp_file(source, target)
    fs.setxattrs(target, netflix_archived_from_etag=fs.info(source)["etag"])
    assert zone.archive([row], NOW) == [(row["path"], fs.unstrip_protocol(target))]
    assert not fs.exists(source) and read(zone, fs.unstrip_protocol(target)) == b"x\n1\n"


def test_an_azure_move_killed_right_after_its_copy_is_finished_and_a_file_overwritten_meanwhile_is_kept(azurite, monkeypatch):
    """The copy carries the source's ETag from its own request: a move killed as soon as it returns
    is finished by the next run (a tag set by a second request left an untagged copy, and the file
    in both places for good). The delete holds only while the source has the ETag the move read:
    a producer overwriting the name during the move keeps its new bytes."""
    from netflix_assets.resources import landing as landing_module

    zone = azure_zone(azurite, monkeypatch, "killedmove", archive_after_days=RETENTION_DAYS)
    rows = []
    for name in ("a.csv", "b.csv", "c.csv"):
        land_raw(zone, name, b"x\n1\n")
        rows.append(ledger_row(f"{zone_prefix(zone)}/{name}", 5, "ingested"))
    azure, copy = landing_module._azure, landing_module._azure_copy

    def killed(fs, call, *args):
        azure(fs, call, *args)
        if call is copy:
            raise KeyboardInterrupt  # the process dies between the copy and the delete

    monkeypatch.setattr(landing_module, "_azure", killed)
    with pytest.raises(KeyboardInterrupt):
        zone.archive(rows[:1], NOW)
    monkeypatch.setattr(landing_module, "_azure", azure)
    assert zone.archive(rows[:1], NOW) == [(rows[0]["path"], zone.archived_uri(rows[0]["path"], rows[0]["ingest_date"]))]
    assert names(zone) == ["b.csv", "c.csv"]

    async def overwritten(fs, source, *args):
        await copy(fs, source, *args)
        # A producer lands b.csv again, same size, other bytes (on the SDK's loop, where this runs).
        await landing_module._blob(fs, source).upload_blob(b"x\n2\n", overwrite=True)
    monkeypatch.setattr(landing_module, "_azure_copy", overwritten)
    with pytest.raises(OSError, match=r"1 file\(s\) could not be archived.*b.csv.*changed during its move"):
        zone.archive(rows[1:2], NOW)
    monkeypatch.setattr(landing_module, "_azure_copy", copy)
    assert zone.archive(rows[1:2], NOW) == []  # both places now: left, with a warning
    assert read(zone, rows[1]["path"]) == b"x\n2\n"
    assert read(zone, zone.archived_uri(rows[1]["path"], rows[1]["ingest_date"])) == b"x\n1\n"

    async def overwritten_before(fs, source, *args):  # between the move's read of the ETag and its copy
        await landing_module._blob(fs, source).upload_blob(b"x\n3\n", overwrite=True)
        await copy(fs, source, *args)
    monkeypatch.setattr(landing_module, "_azure_copy", overwritten_before)
    with pytest.raises(OSError, match=r"c.csv.*changed during its move"):
        zone.archive(rows[2:], NOW)
    assert names(zone) == ["b.csv", "c.csv"] and not zone.exists(zone.archived_uri(rows[2]["path"], rows[2]["ingest_date"]))


def test_a_file_overwritten_in_place_since_its_day_read_it_is_not_archived(landed, tmp_path):
    """The archive is where a re-run of the file's day reads it: a file overwritten in place (same size,
    other bytes) stays in the zone, where that re-run fails naming it; a file only touched (its bytes
    still the ones hashed) is archived."""
    zone, _, rows = landed
    land_raw(zone, "old.csv", b"x\nOLD.CSV\n")
    touched = {**rows["copy.csv"], "modified_at": NOW - dt.timedelta(days=9)}  # the listing shows another time
    # A file refused before its bytes were read (no hash): archived when due, as before, whatever its listing.
    never_read = {**rows["bad_header.csv"], "sha256": None, "modified_at": NOW - dt.timedelta(days=9)}
    lake = LakeResource(root=str(tmp_path / "lake_touched"))
    rest = [r for n, r in rows.items() if n not in ("copy.csv", "bad_header.csv")]
    write_ledger(lake, [*rest, touched, never_read], zone.root_uri())
    messages = []
    assert run_job(zone, lake, messages) == {"moved": 3, "due": 3, "not_due": 1, "kept": 3, "waiting_for_runs": 0}
    assert names(zone) == sorted([*KEPT, "old.csv"]) and read(zone, rows["old.csv"]["path"]) == b"x\nOLD.CSV\n"
    assert not zone.exists(zone.archived_uri(rows["old.csv"]["path"], rows["old.csv"]["ingest_date"]))
    assert any("hold other bytes than their day read" in m and rows["old.csv"]["path"] in m for m in messages), messages


def test_a_due_file_waits_while_a_run_of_its_day_is_in_progress(landed):
    """A re-run of a day reads its files where the ledger says: the archive leaves them until it ends."""
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._core.utils import make_new_run_id

    zone, lake, rows = landed
    busy = str(rows["old.csv"]["ingest_date"])  # old, copy and bad_header's day (5 days ago)
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_run(DagsterRun(job_name="lakehouse_job", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                                    tags={"dagster/partition": busy}))
        assert archive.days_with_runs_in_progress(instance) == {busy}
        result = archive.archive_landed_files.execute_in_process(resources={"landing": zone, "lake": lake}, instance=instance)
        counts = result.output_for_node("move_settled_files_to_archive")
    assert (counts["moved"], counts["waiting_for_runs"]) == (1, 3)
    assert names(zone) == sorted(["bad_header.csv", "copy.csv", "old.csv", *KEPT])
    assert run_job(zone, lake)["moved"] == 3  # the run over (no run of that day left): archived


def test_select_for_archive_keeps_what_must_stay(landed):
    zone, _, rows = landed
    landed_files = zone.list_files()
    on = archive.select_for_archive(rows.values(), landed_files, NOW, RETENTION_DAYS)
    assert sorted(r["path"] for r in on.due) == sorted(rows[n]["path"] for n in MOVED)
    assert (on.not_due, on.kept) == (1, 2)
    outside = ledger_row(rows["old.csv"]["path"], 9, "outside_landing_zone")
    assert archive.select_for_archive([outside], landed_files, NOW, 0).due == []
    assert archive.select_for_archive(rows.values(), landed_files, NOW, None).due == []
    assert archive.select_for_archive(rows.values(), [], NOW, 0).due == [], "only files still in the zone"


def test_archiving_is_off_by_default(tmp_path):
    zone = LandingZoneResource(uri=str(tmp_path / "landing"))
    lake = LakeResource(root=str(tmp_path / "lake"))
    land_raw(zone, "old.csv", b"x\n1\n")
    write_ledger(lake, [ledger_row(f"{zone_prefix(zone)}/old.csv", 400, "ingested")])  # an absolute (old) row
    assert run_job(zone, lake) == {"moved": 0, "due": 0, "not_due": 0, "kept": 0, "waiting_for_runs": 0}
    assert names(zone) == ["old.csv"]

    schedule = archive.daily_archive_landed_files
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    on = LandingZoneResource(uri=zone.uri, archive_after_days=30)
    with dg.DagsterInstance.ephemeral() as instance:
        with dg.build_schedule_context(instance, scheduled_execution_time=NOW, resources={"landing": zone}) as context:
            assert isinstance(schedule(context), dg.SkipReason)
        with dg.build_schedule_context(instance, scheduled_execution_time=NOW, resources={"landing": on}) as context:
            assert schedule(context).run_key == f"archive-{NOW.date().isoformat()}"


def test_the_archive_location(tmp_path):
    landing = tmp_path / "landing"
    zone = LandingZoneResource(uri=str(landing))
    uri = f"file://{landing}/2026/11/a.csv"
    assert zone.archived_uri(uri, dt.date(2026, 11, 1)) == f"file://{landing}/_archive/2026-11-01/2026/11/a.csv"
    elsewhere = LandingZoneResource(uri=str(landing), archive_uri=str(tmp_path / "archive"))
    assert elsewhere.archived_uri(uri, "2026-11-01") == f"file://{tmp_path}/archive/2026-11-01/2026/11/a.csv"
    for bad in (str(landing), str(tmp_path), "abfs://container/archive"):
        with pytest.raises(ValueError):
            LandingZoneResource(uri=str(landing), archive_uri=bad).archived_uri(uri, "2026-11-01")
    os.makedirs(landing / "archive")  # an archive inside the zone, not named `_*`: still never listed
    inside = LandingZoneResource(uri=str(landing), archive_uri=str(landing / "archive"), archive_after_days=0)
    land_raw(inside, "a.csv", b"x\n1\n")
    row = ledger_row(f"file://{landing}/a.csv", 1, "ingested")
    assert inside.archive([row], NOW) == [(row["path"], f"file://{landing}/archive/{row['ingest_date']}/a.csv")]
    assert inside.list_files() == []


def test_the_module_s_definitions_resolve(tmp_path):
    defs = dg.Definitions.merge(
        archive.defs,
        dg.Definitions(resources={"landing": LandingZoneResource(uri=str(tmp_path)), "lake": LakeResource(root=str(tmp_path))}),
    )
    assert defs.resolve_job_def("archive_landed_files").name == "archive_landed_files"
    assert defs.resolve_schedule_def("daily_archive_landed_files").cron_schedule == "30 3 * * *"


def test_a_failed_move_does_not_stop_the_others_and_fails_the_run(landed, monkeypatch):
    from netflix_assets.resources import landing as landing_module

    zone, lake, rows = landed
    original = landing_module._move

    def flaky(fs, source, target, mark=True):
        if source.endswith("copy.csv"):
            raise PermissionError(13, "Permission denied", source)
        original(fs, source, target, mark)

    monkeypatch.setattr(landing_module, "_move", flaky)
    with pytest.raises(OSError, match=r"1 file\(s\) could not be archived \(3 were\).*copy.csv"):
        zone.archive([rows[n] for n in MOVED], NOW)
    assert names(zone) == sorted(["copy.csv", *KEPT])
    with dg.DagsterInstance.ephemeral() as instance:
        result = archive.archive_landed_files.execute_in_process(
            resources={"landing": zone, "lake": lake}, instance=instance, raise_on_error=False
        )
        assert not result.success
