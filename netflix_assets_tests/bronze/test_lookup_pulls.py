"""The HTTP pull of a lookup file into the lake (the ADF copy): unchanged content
is not downloaded again, yet every pull is recorded. No Spark needed."""

import json
from pathlib import Path

from netflix_assets.bronze import pulls

from netflix_assets_tests.resources.test_http_source import BODY, ITEM, PATH, fault_server, make_source  # noqa: F401  (fixture)


def stored(root: Path, day: str) -> tuple[bytes, dict]:
    folder = root / "netflix_cast" / day
    return (folder / ITEM.file_name).read_bytes(), json.loads((folder / pulls.RECORD_NAME).read_text())


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
    assert next_day["uri"].endswith("/2026-11-25/netflix_cast.csv")


def test_changed_content_is_downloaded(fault_server, tmp_path):
    source = make_source(f"{fault_server.url}/lookup")
    pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-24")
    fault_server.bodies[PATH] = BODY + b"s3,Carol\n"
    record = pulls.pull(source, ITEM, str(tmp_path / "netflix_cast"), "2026-11-25")
    assert (record["http_status"], record["unchanged"]) == (200, False)
    assert stored(tmp_path, "2026-11-25")[0].endswith(b"s3,Carol\n")
    assert stored(tmp_path, "2026-11-24")[0] == BODY, "the earlier day's copy is kept as pulled"


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
