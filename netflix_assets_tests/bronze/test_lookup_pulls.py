"""The HTTP pull of a lookup file into the lake (the ADF copy): unchanged content
is not downloaded again, yet every pull is recorded. No Spark needed."""

import json
from pathlib import Path

import pytest

from netflix_assets.bronze import pulls
from netflix_assets.resources.http_source import sha256

from netflix_assets_tests.resources.test_http_source import (  # noqa: F401  (fixture)
    BODY, ITEM, PATH, RecordingLog, fault_server, make_source,
)


def stored(root: Path, day: str) -> tuple[bytes, dict]:
    """(the bytes of the day's latest pull, its record): the copy is `<day>/<sha256[:16]>/<file>`."""
    record = json.loads((root / "netflix_cast" / day / pulls.RECORD_NAME).read_text())
    copy = Path(record["uri"].removeprefix("file://"))
    assert copy.parent == root / "netflix_cast" / day / record["sha256"][:16] and copy.name == ITEM.file_name
    return copy.read_bytes(), record


def test_first_pull_stores_the_bytes_and_records_the_etag(fault_server, tmp_path):
    source = make_source(f"{fault_server.url}/lookup")
    record = pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-24")
    data, on_disk = stored(tmp_path, "2026-11-24")
    assert data == BODY and on_disk == record
    assert (record["http_status"], record["unchanged"], record["bytes"]) == (200, False, len(BODY))
    assert record["etag"] and record["sha256"]


def test_an_unchanged_file_is_not_downloaded_again_but_the_pull_is_recorded(fault_server, tmp_path):
    source = make_source(f"{fault_server.url}/lookup")
    first = pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-24")
    again = pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-24")
    headers = fault_server.requests(PATH)[-1][1]
    assert headers.get("If-None-Match") == first["etag"]
    assert (again["http_status"], again["unchanged"]) == (304, True)
    assert again["fetched_at"] == first["fetched_at"], "bronze rows stay identical"
    assert again["pulled_at"] >= first["pulled_at"]
    # The next day: still a 304, and the day's folder gets its copy from the lake, not the network.
    next_day = pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-25")
    data, record = stored(tmp_path, "2026-11-25")
    assert (record["http_status"], record["unchanged"], data) == (304, True, BODY)
    assert next_day["uri"].endswith(f"/2026-11-25/{next_day['sha256'][:16]}/netflix_cast.csv")


def test_changed_content_is_downloaded(fault_server, tmp_path):
    source = make_source(f"{fault_server.url}/lookup")
    pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-24")
    fault_server.bodies[PATH] = BODY + b"s3,Carol\n"
    record = pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-25")
    assert (record["http_status"], record["unchanged"]) == (200, False)
    assert stored(tmp_path, "2026-11-25")[0].endswith(b"s3,Carol\n")
    assert stored(tmp_path, "2026-11-24")[0] == BODY, "the earlier day's copy is kept as pulled"
    # Other content the same day is another file (bronze's `_source_file`): the first one stays.
    fault_server.bodies[PATH] = BODY + b"s4,Dan\n"
    again = pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-25")
    assert again["uri"] != record["uri"] and stored(tmp_path, "2026-11-25")[0].endswith(b"s4,Dan\n")
    assert Path(record["uri"].removeprefix("file://")).read_bytes().endswith(b"s3,Carol\n")


def test_without_etags_the_content_hash_decides(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / ITEM.file_name).write_bytes(BODY)
    source = make_source(served.as_uri())
    first = pulls.pull(source, ITEM, str(tmp_path / "lake" / "netflix_cast"), "2026-11-24")
    again = pulls.pull(source, ITEM, str(tmp_path / "lake" / "netflix_cast"), "2026-11-24")
    assert first["etag"] is None and (again["unchanged"], again["fetched_at"]) == (True, first["fetched_at"])


def test_a_flaky_server_is_retried_and_the_attempts_recorded(fault_server, tmp_path):
    fault_server.script(PATH, "500", "sleep", "ok")
    record = pulls.pull(make_source(f"{fault_server.url}/lookup"), ITEM, str(tmp_path / "netflix_cast"), "2026-11-24")
    assert record["attempts"] == 3 and stored(tmp_path, "2026-11-24")[0] == BODY


def test_the_record_never_holds_a_sas_token(fault_server, tmp_path):
    source = make_source(f"{fault_server.url}/lookup?sv=2024&sig=SECRET")
    record = pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-24")
    assert "SECRET" not in json.dumps(record)


def _pull_asset(dataset: str):
    from netflix_assets.bronze.assets import pull_lookups

    return next(a for a in pull_lookups if a.key.path == ["raw", dataset])


def _materialize_pull(source, lake_root: Path, day: str, refetch: bool = False):
    import dagster as dg

    from netflix_assets.deployments import local_resources

    resources = local_resources(lake_uri=str(lake_root), http_source=source)
    config = {"ops": {"raw__netflix_cast": {"config": {"refetch": True}}}} if refetch else None
    result = dg.materialize([_pull_asset("netflix_cast")], resources=resources, partition_key=day, run_config=config)
    event = result.get_asset_materialization_events()[0].event_specific_data.materialization
    return event.metadata["kept_stored_copy"].value


def test_a_past_day_keeps_the_copy_it_pulled_unless_refetched(fault_server, tmp_path, monkeypatch):
    """Re-materializing a past day (a backfill, "Materialize all" of an old partition) must not put the
    source's new bytes under that day: its copy and record stay as pulled, no request is made."""
    source, day, root = make_source(f"{fault_server.url}/lookup"), "2026-11-24", tmp_path / "lake"
    monkeypatch.setenv("NETFLIX_TODAY", day)
    assert _materialize_pull(source, root, day) is False
    before = stored(root / "raw" / "api", day)
    monkeypatch.setenv("NETFLIX_TODAY", "2026-11-26")  # two days later, the source has changed
    fault_server.bodies[PATH] = BODY + b"s3,Carol\n"
    requests = len(fault_server.requests(PATH))
    assert _materialize_pull(source, root, day) is True
    assert stored(root / "raw" / "api", day) == before and len(fault_server.requests(PATH)) == requests
    # The lake moved to another folder (azcopy of prod into dev): the day's copy is still found and kept.
    moved = tmp_path / "moved"
    root.rename(moved)
    root = moved
    assert _materialize_pull(source, root, day) is True and len(fault_server.requests(PATH)) == requests
    # Asked for explicitly, the day is pulled again; today's partition is always pulled.
    assert _materialize_pull(source, root, day, refetch=True) is False
    assert stored(root / "raw" / "api", day)[0].endswith(b"s3,Carol\n")
    assert _materialize_pull(source, root, "2026-11-26") is False


def test_a_cut_pull_leaves_no_half_file_and_a_bad_record_stops_no_later_pull(fault_server, tmp_path, monkeypatch):
    """A run killed (or a disk filled) while it writes the copy or its record: the readers never see
    half of either, and a record that does not parse (left by an older version) is passed over."""
    import fsspec.implementations.local as local

    source, root = make_source(f"{fault_server.url}/lookup"), tmp_path / "netflix_cast"
    pulls.pull(source, ITEM, str(root), "2026-11-24")
    fault_server.bodies[PATH] = BODY + b"s3,Carol\n"
    real = local.LocalFileSystem.pipe_file

    def cut(self, path, value, **kwargs):
        real(self, path, value[: len(value) // 2], **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local.LocalFileSystem, "pipe_file", cut)
    with pytest.raises(OSError):
        pulls.pull(source, ITEM, str(root), "2026-11-24")
    monkeypatch.setattr(local.LocalFileSystem, "pipe_file", real)
    data, record = stored(tmp_path, "2026-11-24")
    assert data == BODY and record["sha256"] == sha256(BODY)
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert written == [f"2026-11-24/{sha256(BODY)[:16]}/{ITEM.file_name}", f"2026-11-24/{pulls.RECORD_NAME}"], written

    # A copy overwritten by a pull killed before its record was stored: its record's hash no longer holds,
    # so it is neither answered with a 304 for (its ETag is not sent) nor copied to the next day.
    copy = root / "2026-11-24" / sha256(BODY)[:16] / ITEM.file_name
    copy.write_bytes(b"show_id,cast\ns1,Mallory\n")
    fault_server.bodies[PATH] = BODY
    record = pulls.pull(source, ITEM, str(root), "2026-11-25")
    assert "If-None-Match" not in fault_server.requests(PATH)[-1][1] and record["http_status"] == 200
    assert stored(tmp_path, "2026-11-25")[0] == BODY
    fault_server.bodies[PATH] = BODY + b"s3,Carol\n"

    (root / "2026-11-25" / pulls.RECORD_NAME).write_text('{"url": "http://x", "uri": "fi')
    log = RecordingLog()
    record = pulls.pull(source, ITEM, str(root), "2026-11-26", log=log)
    assert record["http_status"] == 200 and stored(tmp_path, "2026-11-26")[0].endswith(b"s3,Carol\n")
    assert any("does not hold a pull record" in w for w in log.warnings), log.warnings
