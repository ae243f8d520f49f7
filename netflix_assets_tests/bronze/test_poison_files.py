"""Poison files and odd names, landed beside good files, on local disk and on Azure Blob
(Azurite): each poison file is refused with its own status, message and bounded evidence;
the good files of the same batch arrive; the run succeeds and the reconciliation holds.
Through the real sensor tick and job, with small limits so that the files stay small."""

import os

import dagster as dg
import pytest
from dagster._core.storage.tags import RUN_KEY_TAG

from netflix_assets.bronze import ledger as L
from netflix_assets.resources.landing import LandingZoneResource
from netflix_assets.transforms import csv_records as cr

from netflix_assets_tests.lakehouse import Lakehouse, check_results, materialized
from netflix_assets_tests.resources.test_landing_zone import azure_zone
from netflix_assets_tests.conftest import today_iso

HEADER = "duration_minutes,duration_seasons,type,title,date_added,release_year,rating,description,show_id\n"
LIMITS = {"max_record_bytes": 4096, "evidence_bytes": 512, "max_file_bytes": 32 * 1024}


def good(show_id: str, title: str) -> bytes:
    return (HEADER + f'90,,Movie,{title},"September 1, 2021",2020,PG,A good film,{show_id}\n').encode()


# name -> (bytes, expected status code, or None when the file is ingested)
FILES = {
    "good.csv": (good("71000001", "Good One"), None),
    # The reported case: the last quoted field never closes and runs past the limit.
    "runaway_quote.csv": (good("71000002", "Lost")[:-1] + b'\n90,,Movie,"Runaway' + b" blah\n" * 2000, cr.LINE_TOO_LONG),
    "unterminated.csv": (good("71000003", "Lost")[:-1] + b'\n90,,Movie,"Open,2020\n', cr.UNTERMINATED_QUOTE),
    "one_long_line.csv": (b"x" * 20_000, cr.LINE_TOO_LONG),
    "too_large.csv": (good("71000004", "Big") + b"90,,Movie,Filler,,2020,PG,pad,71000005\n" * 1000, L.FILE_TOO_LARGE),
    # Odd but valid names are ingested like any other.
    "100% real.csv": (good("71000012", "Percent Name"), None),
    " spaced .csv": (good("71000013", "Spaced Name"), None),
    ("n" * 200) + ".csv": (good("71000014", "Long Name"), None),
}
LOCAL_ONLY = {
    "new\nline.csv": (good("71000015", "Newline Name"), None),
    # adlfs reads '?' then '#' as a query and a fragment (it would open another blob): there,
    # the name is refused from the listing, see test_landing_zone.
    "a?x#y.csv": (good("71000011", "Query Name"), None),
}


def _land_local_oddities(zone_dir: str) -> dict[str, str]:
    """Names and files only a POSIX disk can hold: expected status code by uri."""
    expected = {}
    # A Latin-1 name (not valid UTF-8): recorded, never opened.
    fd = os.open(os.fsencode(zone_dir) + b"/caf\xe9.csv", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, good("71000021", "Latin Name"))
    os.close(fd)
    expected[r"caf\xe9"] = L.INVALID_NAME
    # A link whose target is gone (a file removed between the listing and the read).
    os.symlink(os.path.join(zone_dir, "removed.data"), os.path.join(zone_dir, "dangling.csv"))
    expected["dangling.csv"] = cr.UNREADABLE
    # A FIFO named *.csv: opening it would block the worker forever.
    os.mkfifo(os.path.join(zone_dir, "pipe.csv"))
    expected["pipe.csv"] = L.NOT_A_REGULAR_FILE
    return expected


@pytest.fixture(scope="module", params=["local", "azurite"])
def poisoned(request, spark, lookup_server, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"poison-{request.param}")
    if request.param == "local":
        landing = LandingZoneResource(uri=str(root / "raw" / "netflix_titles"), settle_seconds=0, **LIMITS)
    else:
        monkeypatch = pytest.MonkeyPatch()
        request.addfinalizer(monkeypatch.undo)
        azure_zone(request.getfixturevalue("azurite"), monkeypatch, "poison", "netflix_titles")
        landing = LandingZoneResource.from_env("unused", settle_seconds=0, **LIMITS)
    lake = Lakehouse.create(root, lookup_server, landing=landing)
    sources = tmp_path_factory.mktemp("src")
    files = dict(FILES, **(LOCAL_ONLY if request.param == "local" else {}))
    uris, expected = {}, {}
    for i, (name, (data, status)) in enumerate(sorted(files.items())):
        (sources / f"{i}.csv").write_bytes(data)
        uris[name] = lake.land(sources / f"{i}.csv", name)
        expected[uris[name]] = status
    if request.param == "local":
        zone_dir = str(root / "raw" / "netflix_titles")
        for fragment, status in _land_local_oddities(zone_dir).items():
            [uri] = [f.uri for f in lake.landing.list_files() if fragment in f.uri]
            expected[uri] = status

    tick = lake.tick()
    assert tick.run_requests, tick
    requested = {uri for r in tick.run_requests for uri in r.run_config["ops"]["bronze_netflix_titles"]["config"]["files"]}
    job = lake.defs.resolve_job_def("lakehouse_job")
    selection = [dg.AssetKey(k) for k in (
        ["bronze", "netflix_titles"], ["quarantine", "bronze_netflix_titles"],
        ["silver", "netflix_titles"], ["quarantine", "netflix_titles"],
    )]
    results = [
        job.execute_in_process(
            run_config=r.run_config, partition_key=r.partition_key, asset_selection=selection,
            tags={RUN_KEY_TAG: r.run_key}, instance=lake.instance, raise_on_error=False,
        )
        for r in tick.run_requests
    ]
    day = tick.run_requests[0].partition_key
    return lake, day, expected, requested, results


def test_the_tick_requests_every_file_and_the_runs_succeed(poisoned):
    lake, day, expected, requested, results = poisoned
    assert requested == set(expected)
    assert all(r.success for r in results)


def test_each_file_has_its_status_and_the_good_ones_arrive(poisoned):
    lake, day, expected, _, results = poisoned
    ledger = {r["path"]: r for r in lake.ledger()}
    got = {uri: L.status_code(ledger[uri]["status"]) for uri in expected}
    assert got == {uri: status or L.INGESTED for uri, status in expected.items()}
    silver_sources = {r["_source_file"] for r in lake.rows("silver/netflix_titles", day)}
    bronze_sources = {r["_source_file"] for r in lake.rows("bronze/netflix_titles", day)}
    good = {uri for uri, status in expected.items() if status is None}
    assert silver_sources == good and bronze_sources == good, "a refused file has no bronze row, not even its early ones"


def test_refused_files_carry_a_message_and_bounded_evidence(poisoned):
    lake, day, expected, _, _ = poisoned
    ledger = {r["path"]: r["status"] for r in lake.ledger()}
    quarantine = [r for r in lake.rows("quarantine/bronze_netflix_titles", day)]
    for uri, status in expected.items():
        if status is None:
            continue
        message = ledger[uri].split(":", 1)[1].strip() if ":" in ledger[uri] else ""
        assert message, f"{uri}: {ledger[uri]!r} says why"
        rows = [r for r in quarantine if r["_source_file"] == uri]
        assert rows and {r["_reason"] for r in rows} == {ledger[uri]}, uri
        evidence = sum(len((r["_rescued_data"] or "").encode()) for r in rows)
        assert evidence <= LIMITS["evidence_bytes"], (uri, evidence)
    by_code = {L.status_code(ledger[u]): u for u, s in expected.items() if s}
    runaway = [r for r in quarantine if r["_source_file"].endswith("runaway_quote.csv")]
    assert runaway[0]["_source_line"] == 3 and runaway[0]["_rescued_data"].startswith('90,,Movie,"Runaway')
    assert "line 3" in ledger[by_code[cr.UNTERMINATED_QUOTE]]
    assert "32768" in ledger[by_code[L.FILE_TOO_LARGE]]


def test_the_reconciliation_holds(poisoned):
    lake, day, _, _, results = poisoned
    for result in results:
        assert check_results(result)["silver/netflix_titles:reconciliation"] is True
    bronze = len(lake.rows("bronze/netflix_titles", day))
    assert bronze == len(lake.rows("silver/netflix_titles", day)) + len(lake.rows("quarantine/netflix_titles", day))


def test_rematerializing_the_day_gives_the_same_ledger_and_tables(poisoned):
    lake, day, expected, _, _ = poisoned
    before = {t: sorted(map(repr, lake.rows(t, day))) for t in ("bronze/netflix_titles", "quarantine/bronze_netflix_titles")}
    statuses = {r["path"]: r["status"] for r in lake.ledger()}
    result = lake.run(day, asset_selection=[dg.AssetKey(["bronze", "netflix_titles"]), dg.AssetKey(["quarantine", "bronze_netflix_titles"])])
    assert result.success
    assert {r["path"]: r["status"] for r in lake.ledger()} == statuses
    after = {t: sorted(map(repr, lake.rows(t, day))) for t in before}
    assert after == before


def test_a_run_says_which_files_wait_and_can_skip_the_settle_window(spark, lookup_server, tmp_path):
    """A file landed seconds before a manual run is not silently skipped: the run names it
    (log and `files_waiting`), and a run with `settle_seconds: 0` takes it."""
    landing = LandingZoneResource(uri=str(tmp_path / "raw" / "netflix_titles"), settle_seconds=3600)
    lake = Lakehouse.create(tmp_path, lookup_server, landing=landing)
    (tmp_path / "fresh.csv").write_bytes(good("71000031", "Fresh"))
    uri = lake.land(tmp_path / "fresh.csv", "fresh.csv")
    day = today_iso()
    selection = [dg.AssetKey(["bronze", "netflix_titles"]), dg.AssetKey(["quarantine", "bronze_netflix_titles"])]
    job = lake.defs.resolve_job_def("lakehouse_job")

    first = job.execute_in_process(partition_key=day, asset_selection=selection, instance=lake.instance)
    metadata = materialized(first)["bronze/netflix_titles"]
    assert metadata["files_waiting"].value == [uri] and metadata["files_read"].value == 0
    logged = [e.user_message for e in lake.instance.all_logs(first.run_id) if "still settling" in e.user_message]
    assert logged and uri in logged[0] and "settle_seconds: 0" in logged[0]

    config = {"ops": {"bronze_netflix_titles": {"config": {"settle_seconds": 0}}}}
    second = job.execute_in_process(run_config=config, partition_key=day, asset_selection=selection, instance=lake.instance)
    assert materialized(second)["bronze/netflix_titles"]["files_waiting"].value == []
    assert {r["show_id"] for r in lake.rows("bronze/netflix_titles", day)} == {"71000031"}
