"""The landing zone of titles files: a folder or a blob container, through fsspec."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional

import dagster as dg

# Names of files still being written by their producer: never picked up.
IN_PROGRESS_MARKERS = ("_tmp", ".tmp", ".part", "_copying")


@dataclass(frozen=True)
class LandedFile:
    uri: str
    size: int
    modified: Optional[dt.datetime]


def _modified(info: dict[str, Any]) -> Optional[dt.datetime]:
    value = info.get("mtime", info.get("last_modified", info.get("created")))
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)


def is_in_progress(name: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    return base.startswith((".", "_")) or any(marker in base for marker in IN_PROGRESS_MARKERS)


class LandingZoneResource(dg.ConfigurableResource):
    """Lists `*.csv` files (nested folders allowed) under `<lake>/raw/netflix_titles`."""

    uri: str

    def _fs(self):
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.uri)
        return fs, path

    def list_files(self) -> list[LandedFile]:
        fs, root = self._fs()
        if not fs.exists(root):
            return []
        found = []
        for path, info in fs.find(root, detail=True).items():
            if info.get("type") != "file" or not path.lower().endswith(".csv") or is_in_progress(path):
                continue
            found.append(LandedFile(uri=fs.unstrip_protocol(path), size=int(info.get("size") or 0), modified=_modified(info)))
        return sorted(found, key=lambda f: f.uri)

    def put_file(self, local_path: str, name: str) -> str:
        """Land a file the way a producer would: write under a temporary name, then rename."""
        fs, root = self._fs()
        target = f"{root.rstrip('/')}/{name}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{target}.part"
        fs.put_file(local_path, tmp)
        fs.mv(tmp, target)
        return fs.unstrip_protocol(target)
