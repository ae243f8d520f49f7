"""The landing zone of titles files: a local folder or an Azure Blob / ADLS Gen2
container, through one fsspec code path.

Local: `uri` is a directory (or file://). Azure: `uri` is
`abfs[s]://<container>[@<account>.dfs.core.windows.net]/<prefix>`, with the
account and its credential from environment variables (see `from_env`);
`blob_endpoint` points the same code at Azurite in tests.
"""

import datetime as dt
import os
import posixpath
from dataclasses import dataclass
from typing import Any, Optional

import dagster as dg
from pydantic import Field

# Names of files still being written by their producer: never picked up.
IN_PROGRESS_MARKERS = ("_tmp", ".tmp", ".part", "_copying")
AZURE_PROTOCOLS = ("abfs", "abfss", "az")

# Environment variables read by `from_env` (values never appear in code or config files).
LANDING_ENV = {
    "account_name": "NETFLIX_LANDING_ACCOUNT",
    "account_key": "NETFLIX_LANDING_ACCOUNT_KEY",
    "sas_token": "NETFLIX_LANDING_SAS_TOKEN",
    "connection_string": "NETFLIX_LANDING_CONNECTION_STRING",
    "blob_endpoint": "NETFLIX_LANDING_BLOB_ENDPOINT",
}


class OutsideLandingZone(ValueError):
    """A name or URI that would resolve outside the landing zone (`../`, symlink)."""


@dataclass(frozen=True)
class LandedFile:
    uri: str
    size: int
    modified: Optional[dt.datetime]
    # The store's version tag of the content (Azure ETag); None on local disk.
    etag: Optional[str] = None

    @property
    def fingerprint(self) -> str:
        """Changes whenever the file's content may have changed."""
        stamp = self.modified.isoformat() if self.modified else ""
        return f"{self.size}|{stamp}|{self.etag or ''}"


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


def _has_parent_segment(path: str) -> bool:
    return ".." in path.replace("\\", "/").split("/")


class LandingZoneResource(dg.ConfigurableResource):
    """Lists `*.csv` files (nested folders allowed) under the landing zone, opens
    and hashes them, and lands files the way a producer does (temporary name, then rename)."""

    uri: str = Field(description="Local directory, file:// or abfs[s]://<container>[@<account>...]/<prefix>.")
    account_name: Optional[str] = Field(default=None, description="Azure storage account (from an EnvVar).")
    account_key: Optional[str] = Field(default=None, description="Azure account key (from an EnvVar).")
    sas_token: Optional[str] = Field(default=None, description="Azure SAS token (from an EnvVar).")
    connection_string: Optional[str] = Field(default=None, description="Azure connection string (from an EnvVar).")
    blob_endpoint: Optional[str] = Field(
        default=None, description="Blob endpoint override, e.g. Azurite's http://127.0.0.1:10000/devstoreaccount1."
    )
    settle_seconds: float = Field(
        default=30.0,
        description="A file whose size and modification time have not changed for this long is complete.",
    )

    @classmethod
    def from_env(cls, default_uri: str, **kwargs: Any) -> "LandingZoneResource":
        """`NETFLIX_LANDING_URI` (default: the lake's landing folder) and the Azure
        settings of `LANDING_ENV`, each passed as a `dg.EnvVar` when it is set."""
        settings: dict[str, Any] = {
            field: dg.EnvVar(var) for field, var in LANDING_ENV.items() if os.environ.get(var)
        }
        return cls(uri=os.environ.get("NETFLIX_LANDING_URI") or default_uri, **settings, **kwargs)

    # ------------------------------------------------------------ filesystem

    @property
    def protocol(self) -> str:
        return self.uri.split("://", 1)[0] if "://" in self.uri else "file"

    def storage_options(self) -> dict[str, Any]:
        """fsspec options for this store: what an executor needs to open a landed file."""
        if self.protocol not in AZURE_PROTOCOLS:
            return {}
        connection_string = self.connection_string
        if connection_string is None and self.blob_endpoint:
            if not (self.account_name and self.account_key):
                raise ValueError("blob_endpoint needs account_name and account_key")
            scheme = self.blob_endpoint.split("://", 1)[0]
            connection_string = (
                f"DefaultEndpointsProtocol={scheme};AccountName={self.account_name};"
                f"AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};"
            )
        if connection_string:
            return {"connection_string": connection_string}
        options: dict[str, Any] = {"account_name": self.account_name or self._account_from_uri()}
        if self.account_key:
            options["account_key"] = self.account_key
        elif self.sas_token:
            options["sas_token"] = self.sas_token
        else:
            options["anon"] = False  # DefaultAzureCredential: managed identity, az login, env service principal
        return options

    def _account_from_uri(self) -> Optional[str]:
        netloc = self.uri.split("://", 1)[1].split("/", 1)[0]
        return netloc.split("@", 1)[1].split(".", 1)[0] if "@" in netloc else None

    def filesystem(self):
        """(fs, root path without protocol)."""
        import fsspec

        fs, root = fsspec.core.url_to_fs(self.uri, **self.storage_options())
        return fs, root.rstrip("/")

    def _root_real(self, fs, root: str) -> str:
        return os.path.realpath(root) if self.protocol == "file" else root

    def _inside(self, fs, root: str, path: str, is_link: Optional[bool] = None) -> bool:
        if _has_parent_segment(path) or not path.startswith(root + "/"):
            return False
        if self.protocol == "file" and is_link is not False:
            # A symlink pointing outside the zone is outside, whatever its name.
            return os.path.realpath(path).startswith(self._root_real(fs, root) + os.sep)
        return True

    # ------------------------------------------------------------ listing

    def list_files(self) -> list[LandedFile]:
        """Every complete-named `*.csv` under the zone, sorted by URI (one recursive listing)."""
        return self.scan()[0]

    def scan(self) -> tuple[list[LandedFile], list[str]]:
        """(landed files, URIs found under the zone that resolve outside it)."""
        fs, root = self.filesystem()
        if not fs.exists(root):
            return [], []
        fs.invalidate_cache(root)  # a long-lived process (the daemon) must see new blobs
        found, escaped = [], []
        prefix = fs.unstrip_protocol(root)  # once, not per file: listing 10,000 files stays cheap
        for path, info in fs.find(root, detail=True).items():
            is_file = info.get("type") == "file" or info.get("islink")  # fsspec types a symlink "other"
            if not is_file or not path.lower().endswith(".csv") or is_in_progress(path):
                continue
            uri = prefix + path[len(root):] if path.startswith(root + "/") else fs.unstrip_protocol(path)
            if not self._inside(fs, root, path, is_link=bool(info.get("islink"))):
                escaped.append(uri)
                continue
            etag = info.get("etag")
            found.append(
                LandedFile(uri=uri, size=int(info.get("size") or 0), modified=_modified(info), etag=str(etag) if etag else None)
            )
        found.sort(key=lambda f: f.uri)
        return found, sorted(escaped)

    def require_inside(self, uri: str) -> str:
        """`uri` itself if it names a file inside the zone, else OutsideLandingZone."""
        fs, root = self.filesystem()
        path = fs._strip_protocol(uri)
        if not self._inside(fs, root, path):
            raise OutsideLandingZone(f"{uri} is outside the landing zone {self.uri}")
        return fs.unstrip_protocol(path)

    def exists(self, uri: str) -> bool:
        fs, _ = self.filesystem()
        return fs.exists(fs._strip_protocol(uri))

    def put_file(self, local_path: str, name: str) -> str:
        """Land a file the way a producer would: write under a temporary name, then rename."""
        if name.startswith("/") or _has_parent_segment(name):
            raise OutsideLandingZone(f"{name!r} would land outside the landing zone {self.uri}")
        fs, root = self.filesystem()
        target = posixpath.join(root, name)
        if self.protocol == "file":
            fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{target}.part"
        fs.put_file(local_path, tmp)
        fs.mv(tmp, target)
        return fs.unstrip_protocol(target)
