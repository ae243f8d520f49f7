"""Bad titles files, all landed beside a good one: each gets its reason recorded,
the good file still goes through, and the silver reconciliation still holds."""

import io
import os
import tracemalloc

import dagster as dg
import pytest
from dagster._core.storage.tags import RUN_KEY_TAG

from netflix_assets.bronze.ledger import DUPLICATE, INGESTED, OUTSIDE, changed_since_read, claims_from_rows
from netflix_assets.transforms import bronze as bronze_transforms
from netflix_assets.transforms.csv_records import EMPTY_FILE, NOT_UTF8, UNKNOWN_HEADER, parse_records
from netflix_assets.transforms.formats import TITLE_FORMATS

from netflix_assets_tests.conftest import today_iso
from netflix_assets_tests.lakehouse import Lakehouse, check_results

TUTORIAL_HEADER = "duration_minutes,duration_seasons,type,title,date_added,release_year,rating,description,show_id\n"
GOOD = TUTORIAL_HEADER + "90,,Movie,Good One,\"September 1, 2021\",2020,PG,A good film,70000001\n"
RAGGED = (
    TUTORIAL_HEADER
    + "90,,Movie,Fine,\"September 1, 2021\",2020,PG,ok,70000010\n"
    + "90,,Movie,Too Many,\"September 1, 2021\",2020,PG,extra,70000011,surprise\n"
    + "90,,Movie,Too Few\n"
)
BAD_FILES = {
    "good.csv": GOOD.encode(),
    "good_copy.csv": GOOD.encode(),  # same bytes, another name
    "unknown_header.csv": b"id,name,year\n1,Foo,2020\n2,Bar,2021\n",
    "zero_bytes.csv": b"",
    "blank.csv": b"\r\n\r\n   \n",
    "header_only.csv": TUTORIAL_HEADER.encode(),
    "latin1.csv": (TUTORIAL_HEADER + "90,,Movie,Am\xe9lie,\"May 1, 2020\",2001,R,caf\xe9,70000020\n").encode("latin-1"),
    "ragged.csv": RAGGED.encode(),
}


@pytest.fixture(scope="module")
def landed(spark, lookup_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    lake = Lakehouse.create(root, lookup_server)
    sources = tmp_path_factory.mktemp("src")
    uris = {}
    for name, data in sorted(BAD_FILES.items()):
        (sources / name).write_bytes(data)
        uris[name] = lake.land(sources / name, name)
    # A link inside the zone to a file outside it.
    outside = sources / "secret.csv"
    outside.write_text(GOOD)
    os.symlink(outside, root / "raw" / "netflix_titles" / "link.csv")
    uris["link.csv"] = f"file://{root}/raw/netflix_titles/link.csv"

    tick = lake.tick()
    [request] = tick.run_requests
    job = lake.defs.resolve_job_def("lakehouse_job")
    selection = [dg.AssetKey(k) for k in (
        ["bronze", "netflix_titles"], ["quarantine", "bronze_netflix_titles"],
        ["silver", "netflix_titles"], ["quarantine", "netflix_titles"],
    )]
    result = job.execute_in_process(
        run_config=request.run_config, partition_key=request.partition_key, asset_selection=selection,
        tags={RUN_KEY_TAG: request.run_key}, instance=lake.instance, raise_on_error=False,
    )
    day = request.partition_key
    return lake, day, uris, result, request


def reconciled(lake, day, result) -> bool:
    """The blocking silver reconciliation passed, and bronze = silver + quarantine holds in the tables."""
    bronze = len(lake.rows("bronze/netflix_titles", day))
    parts = len(lake.rows("silver/netflix_titles", day)) + len(lake.rows("quarantine/netflix_titles", day))
    return check_results(result)["silver/netflix_titles:reconciliation"] is True and bronze == parts


def ledger(lake):
    return {r["path"]: r for r in lake.ledger()}


def refused_reasons(lake, day, uri):
    return {r["_reason"] for r in lake.rows("quarantine/bronze_netflix_titles", day) if r["_source_file"] == uri}


def test_run_succeeds_and_reconciliation_holds(landed):
    lake, day, uris, result, _ = landed
    assert result.success
    assert check_results(result)["bronze/netflix_titles:header_recognised"] is True
    assert reconciled(lake, day, result)


def test_the_good_file_goes_through(landed):
    lake, day, uris, _, _ = landed
    assert ledger(lake)[uris["good.csv"]]["status"] == INGESTED
    titles = {r["show_id"]: r for r in lake.rows("silver/netflix_titles", day)}
    assert titles["70000001"]["title"] == "Good One"


def test_unknown_header_quarantines_the_whole_file(landed):
    lake, day, uris, result, _ = landed
    assert reconciled(lake, day, result)
    status = ledger(lake)[uris["unknown_header.csv"]]["status"]
    assert status.startswith(UNKNOWN_HEADER) and "id,name,year" in status
    rows = [r for r in lake.rows("quarantine/bronze_netflix_titles", day) if r["_source_file"] == uris["unknown_header.csv"]]
    assert sorted(r["_rescued_data"] for r in rows) == ["1,Foo,2020", "2,Bar,2021", "id,name,year"]


@pytest.mark.parametrize("name", ["zero_bytes.csv", "blank.csv"])
def test_empty_files_are_refused_as_empty(landed, name):
    lake, day, uris, result, _ = landed
    assert reconciled(lake, day, result)
    assert ledger(lake)[uris[name]]["status"] == EMPTY_FILE
    assert refused_reasons(lake, day, uris[name]) == {EMPTY_FILE}


def test_a_header_only_file_is_ingested_with_no_rows(landed):
    lake, day, uris, result, _ = landed
    assert reconciled(lake, day, result)
    assert ledger(lake)[uris["header_only.csv"]]["status"] == INGESTED
    assert not [r for r in lake.rows("bronze/netflix_titles", day) if r["_source_file"] == uris["header_only.csv"]]


def test_a_file_that_is_not_utf8_is_quarantined_whole(landed):
    lake, day, uris, result, _ = landed
    assert reconciled(lake, day, result)
    assert ledger(lake)[uris["latin1.csv"]]["status"] == NOT_UTF8
    rows = [r for r in lake.rows("quarantine/bronze_netflix_titles", day) if r["_source_file"] == uris["latin1.csv"]]
    assert len(rows) == 2 and any("Am\\xe9lie" in r["_rescued_data"] for r in rows), "raw bytes kept, escaped"


def test_rows_with_too_many_or_too_few_fields_are_rescued_then_quarantined(landed):
    lake, day, uris, result, _ = landed
    assert reconciled(lake, day, result)
    bronze = {r["_source_line"]: r for r in lake.rows("bronze/netflix_titles", day) if r["_source_file"] == uris["ragged.csv"]}
    assert bronze[2]["_rescued_data"] is None
    assert bronze[3]["_rescued_data"].endswith("70000011,surprise")
    assert bronze[4]["_rescued_data"] == "90,,Movie,Too Few"
    quarantine = {r["_source_line"]: r["_reason"] for r in lake.rows("quarantine/netflix_titles", day)
                  if r["_source_file"] == uris["ragged.csv"]}
    assert quarantine == {3: "malformed_record", 4: "malformed_record"}
    assert "70000010" in {r["show_id"] for r in lake.rows("silver/netflix_titles", day)}


def test_a_duplicate_file_is_recorded_and_read_once(landed):
    lake, day, uris, result, _ = landed
    assert reconciled(lake, day, result)
    entries = ledger(lake)
    copy, original = entries[uris["good_copy.csv"]], entries[uris["good.csv"]]
    assert copy["sha256"] == original["sha256"]
    assert (copy["status"], copy["duplicate_of"]) == (DUPLICATE, uris["good.csv"])
    sources = {r["_source_file"] for r in lake.rows("bronze/netflix_titles", day)}
    assert uris["good.csv"] in sources and uris["good_copy.csv"] not in sources


def test_a_name_escaping_the_landing_zone_is_recorded_never_read(landed):
    lake, day, uris, result, request = landed
    assert reconciled(lake, day, result)
    assert uris["link.csv"] in request.run_config["ops"]["bronze_netflix_titles"]["config"]["files"]
    assert ledger(lake)[uris["link.csv"]]["status"] == OUTSIDE
    assert uris["link.csv"] not in {r["_source_file"] for r in lake.rows("bronze/netflix_titles", day)}


def test_a_batch_naming_a_path_outside_the_zone_records_it_and_goes_on(landed, tmp_path):
    lake, day, uris, _, _ = landed
    sneaky = uris["good.csv"].rsplit("/", 1)[0] + "/../../../../etc/passwd.csv"
    job = lake.defs.resolve_job_def("lakehouse_job")
    result = job.execute_in_process(
        run_config={"ops": {"bronze_netflix_titles": {"config": {"files": [sneaky]}}}},
        partition_key=day, asset_selection=[dg.AssetKey(["bronze", "netflix_titles"]), dg.AssetKey(["quarantine", "bronze_netflix_titles"])],
        instance=lake.instance, raise_on_error=False,
    )
    assert result.success
    assert ledger(lake)[sneaky]["status"] == OUTSIDE
    # The other files of the partition are untouched by this batch.
    assert ledger(lake)[uris["good.csv"]]["status"] == INGESTED


class _HugeFile(io.RawIOBase):
    """A virtual titles file of `size` bytes, generated as it is read (never on disk)."""

    def __init__(self, size: int):
        self.remaining = size
        self.header = TUTORIAL_HEADER.encode()
        self.row = b'90,,Movie,A title,"September 1, 2021",2020,PG,' + b"x" * 400 + b",70000001\n"
        self.pending = self.header

    def readable(self):
        return True

    def readinto(self, buffer):
        n = 0
        while n < len(buffer) and self.remaining > 0:
            if not self.pending:
                self.pending = self.row
            take = min(len(buffer) - n, len(self.pending), self.remaining)
            buffer[n : n + take] = self.pending[:take]
            self.pending = self.pending[take:]
            self.remaining -= take
            n += take
        return n


def test_a_file_larger_than_memory_is_streamed_never_collected():
    """The parser and the hash stream a 1 GiB file with memory bounded by a chunk.
    (A collect() of the file would need > 1 GiB; the budget here is 64 MiB.)"""
    size = 1 << 30
    tracemalloc.start()
    try:
        records = parse_records(lambda: io.BufferedReader(_HugeFile(size)), TITLE_FORMATS)
        first = [next(records) for _ in range(50_000)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first[-1].values["show_id"] == "70000001" and first[-1].line == 50_001
    assert peak < 64 << 20, f"peak {peak / 2**20:.0f} MiB"
    # The whole-file pass (UTF-8 / NUL scan) went through all 1 GiB on the way, in chunks.


def test_file_digests_stream_in_chunks(monkeypatch):
    """The executors' hash reads a file chunk by chunk."""
    import fsspec

    reads = []

    class Recording(io.BufferedReader):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    opened = type("OpenFile", (), {"open": lambda self: Recording(_HugeFile(64 << 20))})
    monkeypatch.setattr(fsspec, "open", lambda uri, mode, **kw: opened())
    batch = __import__("pyarrow").RecordBatch.from_pydict({"uri": ["virtual://big.csv"]})
    [out] = list(bronze_transforms._digest_partition({})(iter([batch])))
    assert len(out.column("sha256")[0].as_py()) == 64 and out.column("error")[0].as_py() is None
    assert reads and all(0 < size <= 4 << 20 for size in reads), "no read of a whole file"


def test_a_2gb_single_line_file_is_refused_within_a_fixed_memory_budget(tmp_path):
    """The worker function Spark runs for bronze, in a fresh process, on a real 2 GB file with
    no line break: refused `line_too_long` after reading one record limit (16 MiB), with peak RSS
    under 256 MiB (measured: ~156 MiB, ~70 MiB of it the interpreter and imports)."""
    from benchmarks.parse_memory import measure, write_single_line

    path = tmp_path / "one_line.csv"
    write_single_line(path, 2 * 2**30)
    try:
        figures = measure(path)
    finally:
        path.unlink()
    assert figures["refused"] == ["line_too_long"] and figures["rows"] == 0
    assert figures["peak_rss_mb"] < 256, figures


@pytest.mark.parametrize(
    "error,expected",
    [
        (PermissionError(13, "Permission denied"), "unreadable: PermissionError: [Errno 13] Permission denied"),
        (IsADirectoryError(21, "Is a directory"), "unreadable: IsADirectoryError: [Errno 21] Is a directory"),
        (FileNotFoundError(2, "gone"), "unreadable: FileNotFoundError: [Errno 2] gone"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_by_the_hash_and_the_parser(error, expected):
    """Faults root cannot provoke on disk (permission denied) or that need a race, injected
    at the opener: each becomes that file's refusal, never an exception of the worker."""

    def opener():
        raise error

    assert bronze_transforms._digest_one(opener, None, 1 << 20) == (None, expected)
    [record] = list(parse_records(opener, TITLE_FORMATS))
    assert record.reject_reason == expected and record.values == {}


def test_a_file_that_grows_between_listing_and_read_is_refused():
    data = GOOD.encode()
    sha, error = bronze_transforms._digest_one(lambda: io.BytesIO(data + b"more"), len(data), 1 << 20)
    assert sha is None and error == f"changed_during_read: listed with {len(data)} bytes, read {len(data) + 4}"
    records = list(parse_records(lambda: io.BytesIO(data + b"more"), TITLE_FORMATS, expected_size=len(data)))
    assert records and all(r.reject_reason == error and not r.values for r in records)


def test_a_rerun_of_a_day_reads_the_bytes_it_read_never_a_file_changed_since(spark, lookup_server, tmp_path):
    """A name is ingested once. Overwritten in place after its day was read (same size: the listing
    cannot tell), a re-run of the day fails and keeps the day's tables; with the bytes it read in the
    archive, it reads them from there; landed again with those bytes (touched), it reads them."""
    lake = Lakehouse.create(tmp_path / "lake", lookup_server)
    day, source = today_iso(), tmp_path / "titles.csv"
    bronze = [dg.AssetKey(["bronze", "netflix_titles"]), dg.AssetKey(["quarantine", "bronze_netflix_titles"])]
    source.write_text(GOOD)
    uri = lake.land(source, "titles.csv")
    assert lake.run(day, bronze).success

    def day_state():
        return [lake.state(table, day) for table in ("bronze/netflix_titles", "bronze/_ingested_files")]

    kept = day_state()
    listing, _ = lake.landing.scan()
    listed = {f.uri: f for f in listing}
    assert changed_since_read(list(claims_from_rows(lake.ledger()).values()), listed) == [], "an untouched file is not hashed again"
    changed = GOOD.replace("Good One", "Evil One")
    assert len(changed) == len(GOOD)
    source.write_text(changed)
    lake.land(source, "titles.csv")
    result = lake.run(day, bronze)
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.user_failure_data.description
    assert f"partition {day}: 1 file(s) of its ledger hold other bytes" in message and uri in message, message
    assert day_state() == kept

    archived = lake.landing.archived_uri(uri, day).removeprefix("file://")
    os.makedirs(os.path.dirname(archived))
    with open(archived, "w") as copy:
        copy.write(GOOD)
    assert lake.run(day, bronze).success
    assert day_state() == kept and "Good One" in str(kept[0])

    os.remove(archived)
    source.write_text(GOOD)
    lake.land(source, "titles.csv")
    assert lake.run(day, bronze).success
    assert day_state() == kept



def _azure(kind: str) -> Exception:
    from azure.core.exceptions import HttpResponseError, ServiceResponseError

    if kind == "broken":
        return ServiceResponseError("Connection broken: IncompleteRead")
    error = HttpResponseError(message="Operation could not be completed within the specified time")
    error.status_code = 503
    return error


def _aiohttp_disconnected() -> Exception:
    from aiohttp import ServerDisconnectedError

    return ServerDisconnectedError()


def _raised_from_a_reset() -> Exception:  # a client re-raising the connection's error as its own
    error = OSError("read failed")
    error.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    return error


STORE_FAULTS = {
    "connection reset": lambda: ConnectionResetError(104, "Connection reset by peer"),
    "read timeout": lambda: TimeoutError("The read operation timed out"),
    "azure broken response": lambda: _azure("broken"),
    "azure 503 after its retries": lambda: _azure("503"),
    "aiohttp server disconnected": _aiohttp_disconnected,
    "raised from a reset": _raised_from_a_reset,
}


@pytest.mark.parametrize("fault", sorted(STORE_FAULTS))
def test_a_store_fault_mid_read_fails_the_run_rather_than_refusing_a_good_file(fault):
    """A connection reset, a timeout or a throttled read after the file was opened is the store's
    fault, not the file's: the hash and the parser raise it (the run fails; the landing sensor
    retries its batch), where a refusal would be a final status for a good file."""
    error = STORE_FAULTS[fault]()

    class Broken(io.BytesIO):
        def read(self, *args):
            raise error

    with pytest.raises(type(error)):
        bronze_transforms._digest_one(lambda: Broken(GOOD.encode()), None, 1 << 20)
    with pytest.raises(type(error)):
        list(parse_records(lambda: Broken(GOOD.encode()), TITLE_FORMATS))


def test_a_lookup_file_the_source_cannot_serve_blocks_none_of_the_others(spark, tmp_path):
    """Each lookup pull is its own step (the ADF ForEach's items): the cast file missing at the source
    fails its pull alone, and the three other files are pulled and land in bronze."""
    import shutil

    from netflix_assets.transforms.formats import LOOKUPS

    from netflix_assets_tests.conftest import TUTORIAL_DIR

    served = tmp_path / "served"
    served.mkdir()
    for dataset in LOOKUPS:
        if dataset != "netflix_cast":
            shutil.copy(TUTORIAL_DIR / f"{dataset}.csv", served / f"{dataset}.csv")
    lake, day = Lakehouse.create(tmp_path / "lake", served.as_uri()), today_iso()
    selection = [dg.AssetKey([layer, dataset]) for dataset in LOOKUPS for layer in ("raw", "bronze")]
    result = lake.run(day, asset_selection=selection)
    failed = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE}
    assert not result.success and failed == {"raw__netflix_cast"}, failed
    for dataset in set(LOOKUPS) - {"netflix_cast"}:
        assert lake.rows(f"bronze/{dataset}", day), dataset
    assert "bronze/netflix_cast" not in lake.tables()
