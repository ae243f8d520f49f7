"""One HTTP pull of a lookup file into `<lake>/raw/api/<dataset>/<date>/<sha256[:16]>/<file>`,
skipping unchanged content, with a record of the day's latest pull (`<date>/_pull.json`).

Why the content's hash names the copy's folder: the copy's URI is bronze's `_source_file`, which
a keyed refresh (`lib/refresh.py`) takes for the identity of the bytes, as a landed titles file's
is (the ledger keeps those unchanged). A pull of other content the same day is then another file
(the rows of the one it replaces are gone from bronze, so the refresh rebuilds the partition),
where under one name it kept the same row count and looked done; and the bytes a day read
earlier stay, next to the new ones.

Why a past day keeps its copy (`stored`): HTTP has no time travel, so pulling day D again
after the source changed would put today's bytes under D, replace the only copy of what D
read, and rebuild D's tables from them, where re-materializing a partition must reproduce
its rows. Why every write is whole (`write_atomically`): a copy or record cut by a killed
run would otherwise be read by the next one (a record that does not parse stopped every
later pull of its dataset)."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from typing import Any, Optional

from ..io_managers.json_records import copy_atomically, write_atomically
from ..resources.http_source import HttpSourceResource, SourceFile, redact_url, sha256

RECORD_NAME = "_pull.json"


def _read_record(fs, path: str, log=None) -> Optional[dict[str, Any]]:
    """The record at `path`, or None when there is none or it does not parse (written by a
    version that did not write whole files, or by hand): it is then not trusted."""
    if not fs.exists(path):
        return None
    try:
        record = json.loads(fs.cat_file(path))
        if isinstance(record, dict) and isinstance(record.get("uri"), str) and isinstance(record.get("sha256"), str):
            return record
        problem = "not a pull record"
    except ValueError as error:
        problem = f"{type(error).__name__}: {error}"
    if log is not None:
        log.warning(f"{path}: ignored, it does not hold a pull record ({problem[:200]}); the next pull writes it again")
    return None


def _checked(fs, dataset_root: str, day: str, record: dict[str, Any], log=None) -> Optional[dict[str, Any]]:
    """`record` (of `day`), its `uri` where its copy is under `dataset_root` (a lake moved since keeps
    its copies: the path under the day's folder is the same), if that copy holds the bytes the record
    hashed; else None. A copy cut or overwritten by a run killed before its record was stored is then
    neither kept nor copied to another day, nor answered with a 304 for: its pull is fetched whole."""
    copy, folder = fs._strip_protocol(record["uri"]), posixpath.join(dataset_root, day) + "/"
    if not copy.startswith(folder):
        if f"/{day}/" not in copy:
            return None
        copy = folder + copy.split(f"/{day}/", 1)[1]
    if not fs.exists(copy):
        return None
    if sha256(fs.cat_file(copy)) != record["sha256"]:
        if log is not None:
            log.warning(f"{fs.unstrip_protocol(copy)}: its bytes are not the ones its pull recorded; not used")
        return None
    return {**record, "uri": fs.unstrip_protocol(copy)}


def _last_record(fs, dataset_root: str, day: str, log=None) -> Optional[dict[str, Any]]:
    """The record of the latest pull for `day` or an earlier day whose copy still holds its bytes."""
    if not fs.exists(dataset_root):
        return None
    days = sorted((posixpath.basename(p) for p in fs.ls(dataset_root, detail=False)), reverse=True)
    for candidate in days:
        if candidate > day:
            continue
        record = _read_record(fs, posixpath.join(dataset_root, candidate, RECORD_NAME), log)
        checked = record and _checked(fs, dataset_root, candidate, record, log)
        if checked:
            return checked
    return None


def stored(dataset_uri: str, day: str, storage_options: Optional[dict[str, Any]] = None, log=None) -> Optional[dict[str, Any]]:
    """Day `day`'s own pull record, when its copy is stored and still holds the bytes the record
    names (else None: there is nothing of that day to keep)."""
    import fsspec

    fs, dataset_root = fsspec.core.url_to_fs(dataset_uri.rstrip("/"), **(storage_options or {}))
    record = _read_record(fs, posixpath.join(dataset_root, day, RECORD_NAME), log)
    return record and _checked(fs, dataset_root, day, record, log)


def pull(
    http_source: HttpSourceResource,
    item: SourceFile,
    dataset_uri: str,
    day: str,
    log=None,
    storage_options: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Pull `item` for partition `day`; returns the pull record (also the bronze input)."""
    import fsspec

    fs, dataset_root = fsspec.core.url_to_fs(dataset_uri.rstrip("/"), **(storage_options or {}))
    previous = _last_record(fs, dataset_root, day, log)
    result = http_source.fetch(item, etag=(previous or {}).get("etag"), log=log)

    if result.not_modified:
        digest, size = previous["sha256"], previous["bytes"]
    else:
        digest, size = sha256(result.data), len(result.data)
    unchanged = previous is not None and previous["sha256"] == digest
    target = posixpath.join(dataset_root, day, digest[:16], item.file_name)
    here = previous is not None and fs._strip_protocol(previous["uri"]) == target
    if not (unchanged and here):
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        if result.not_modified:
            copy_atomically(fs, fs._strip_protocol(previous["uri"]), target)  # nothing downloaded
        else:
            write_atomically(fs, target, result.data)
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    record = {
        "url": redact_url(result.url),
        "uri": fs.unstrip_protocol(target),
        "sha256": digest,
        "bytes": size,
        "etag": result.etag,
        "http_status": result.status,
        "attempts": result.attempts,
        "unchanged": unchanged,
        # When these bytes were first stored for the day: bronze's _ingested_at, so
        # re-pulling unchanged content reproduces identical bronze rows.
        "fetched_at": previous["fetched_at"] if unchanged and here else now,
        "pulled_at": now,
    }
    write_atomically(fs, posixpath.join(dataset_root, day, RECORD_NAME), json.dumps(record, indent=1).encode())
    return record
