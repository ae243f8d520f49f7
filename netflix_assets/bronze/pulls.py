"""One HTTP pull of a lookup file into `<lake>/raw/api/<dataset>/<date>/`, skipping
unchanged content, with a record of every pull (`_pull.json` beside the copy)."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from typing import Any, Optional

from ..resources.http_source import HttpSourceResource, SourceFile, redact_url, sha256

RECORD_NAME = "_pull.json"


def _last_record(fs, dataset_root: str, day: str) -> Optional[dict[str, Any]]:
    """The record of the latest pull for `day` or an earlier day whose copy still exists."""
    if not fs.exists(dataset_root):
        return None
    days = sorted((posixpath.basename(p) for p in fs.ls(dataset_root, detail=False)), reverse=True)
    for candidate in days:
        if candidate > day:
            continue
        path = posixpath.join(dataset_root, candidate, RECORD_NAME)
        if fs.exists(path):
            record = json.loads(fs.cat_file(path))
            if fs.exists(fs._strip_protocol(record["uri"])):
                return record
    return None


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
    target = posixpath.join(dataset_root, day, item.file_name)
    previous = _last_record(fs, dataset_root, day)
    result = http_source.fetch(item, etag=(previous or {}).get("etag"), log=log)

    if result.not_modified:
        digest, size = previous["sha256"], previous["bytes"]
    else:
        digest, size = sha256(result.data), len(result.data)
    unchanged = previous is not None and previous["sha256"] == digest
    here = previous is not None and fs._strip_protocol(previous["uri"]) == target
    if not (unchanged and here):
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        if result.not_modified:
            fs.copy(fs._strip_protocol(previous["uri"]), target)  # store-side copy, nothing downloaded
        else:
            fs.pipe_file(target, result.data)
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
    fs.pipe_file(posixpath.join(dataset_root, day, RECORD_NAME), json.dumps(record, indent=1).encode())
    return record
