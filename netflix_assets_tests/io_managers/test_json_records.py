"""The JSON IO manager of the pull records: a round trip on local disk and on a non-local
fsspec store, and no code run from data (a pickle planted at the former pickle IO
manager's path is never opened). No Spark."""

import json
import os
import pickle
from pathlib import Path

import dagster as dg
import fsspec
import pytest

from netflix_assets.io_managers.json_records import JsonRecordsIOManager
from netflix_assets.resources.lake import LakeResource

KEY = dg.AssetKey(["raw", "netflix_cast"])
DAY = "2024-01-02"
RECORD = {
    "url": "https://example.com/data/netflix_cast.csv?<redacted>",
    "uri": "file:///lake/raw/api/netflix_cast/2024-01-02/netflix_cast.csv",
    "sha256": "ab" * 32,
    "bytes": 1234,
    "etag": None,
    "http_status": 200,
    "attempts": 1,
    "unchanged": False,
    "fetched_at": "2024-01-02T03:04:05.678901+00:00",
    "pulled_at": "2024-01-02T03:04:05.678901+00:00",
}


def manager(root) -> JsonRecordsIOManager:
    return JsonRecordsIOManager(lake=LakeResource(root=str(root)))


def store(io: JsonRecordsIOManager, obj, key=KEY, partition=DAY) -> dg.OutputContext:
    context = dg.build_output_context(asset_key=key, partition_key=partition)
    io.handle_output(context, obj)
    return context


def load(io: JsonRecordsIOManager, key=KEY, partition=DAY):
    return io.load_input(dg.build_input_context(asset_key=key, partition_key=partition))


def test_round_trip_on_local_disk(tmp_path):
    io = manager(tmp_path)
    store(io, RECORD)

    path = tmp_path / "_dagster_io" / "raw" / "netflix_cast" / f"{DAY}.json"
    assert json.loads(path.read_text()) == RECORD  # plain JSON, readable by anyone
    assert load(io) == RECORD
    # Written under a temporary name and renamed: nothing else is left in the folder.
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{DAY}.json"]

    store(io, {**RECORD, "attempts": 2})  # a re-run replaces the partition's record
    assert load(io)["attempts"] == 2
    with pytest.raises(FileNotFoundError, match="2024-01-03.json does not exist"):
        load(io, partition="2024-01-03")


def test_round_trip_on_a_non_local_store():
    # Not local disk: written with one upload (as a blob on ADLS), read back the same way.
    root = "memory://json-records-test/lake"
    io = manager(root)
    store(io, RECORD)
    fs = fsspec.filesystem("memory")
    assert json.loads(fs.cat_file(f"/json-records-test/lake/_dagster_io/raw/netflix_cast/{DAY}.json")) == RECORD
    assert load(io) == RECORD
    fs.rm("/json-records-test", recursive=True)


def test_unpartitioned_and_odd_partition_keys_stay_inside_their_folder(tmp_path):
    io = manager(tmp_path)
    store(io, [1, 2], key=dg.AssetKey(["a", "b"]), partition=None)
    assert (tmp_path / "_dagster_io" / "a" / "b.json").exists()
    assert load(io, key=dg.AssetKey(["a", "b"]), partition=None) == [1, 2]

    store(io, {"x": 1}, partition="../../escape")
    assert load(io, partition="../../escape") == {"x": 1}
    folder = tmp_path / "_dagster_io" / "raw" / "netflix_cast"
    assert [p.name for p in folder.iterdir()] == ["..%2F..%2Fescape.json"]
    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()} == {
        "_dagster_io/a/b.json",
        "_dagster_io/raw/netflix_cast/..%2F..%2Fescape.json",
    }


def test_output_json_cannot_hold_is_refused(tmp_path):
    import datetime as dt

    io = manager(tmp_path)
    with pytest.raises(TypeError, match="raw/netflix_cast: output is not JSON-serialisable"):
        store(io, {"fetched_at": dt.datetime(2024, 1, 2)})
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        store(io, {"ratio": float("nan")})
    assert not list(tmp_path.rglob("*.json"))


class _Payload:
    """What an attacker with write access to `<lake>/_dagster_io/` would plant: unpickling it runs code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_planted_at_the_old_path_is_never_loaded(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    old = tmp_path / "_dagster_io" / "raw" / "netflix_cast" / DAY  # FilesystemIOManager's path
    old.parent.mkdir(parents=True)
    old.write_bytes(pickle.dumps(_Payload(marker)))
    # A pickle under the new name too: read as JSON, it is refused as malformed, not run.
    (old.parent / f"{DAY}.json").write_bytes(pickle.dumps(_Payload(marker)))

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the JSON IO manager unpickled something")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    opened: list[str] = []
    real_open = fsspec.implementations.local.LocalFileSystem._open

    def recording_open(self, path, *args, **kwargs):
        opened.append(str(path))
        return real_open(self, path, *args, **kwargs)

    monkeypatch.setattr(fsspec.implementations.local.LocalFileSystem, "_open", recording_open)

    io = manager(tmp_path)
    with pytest.raises(ValueError, match="is not a JSON record"):
        load(io)
    (old.parent / f"{DAY}.json").unlink()
    with pytest.raises(FileNotFoundError, match="former pickle IO manager are not read"):
        load(io)
    store(io, RECORD)
    assert load(io) == RECORD

    assert not marker.exists()
    assert opened and all(path.endswith(".json") or path.endswith(".tmp") for path in opened)
    assert not any(path == str(old) for path in opened)
