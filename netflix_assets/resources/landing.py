"""The landing zone of titles files: a local folder or an Azure Blob / ADLS Gen2
container, through one fsspec code path.

Local: `uri` is a directory (or file://). Azure: `uri` is
`abfs[s]://<container>[@<account>.dfs.core.windows.net]/<prefix>`, with the
account and its credential from environment variables (see `from_env`);
`blob_endpoint` points the same code at Azurite in tests.

Names. Every `*.csv` the listing finds comes out as a `LandedFile`, whatever its
name: a file nobody hears about stalls ingestion as surely as a crash. The URI
of a listed file is what bronze later passes to `fsspec.open`, so a name that
cannot make that trip is flagged in `LandedFile.problem` (recorded in the ledger
and never opened) instead of failing at read time, run after run:
- not valid UTF-8 (a Latin-1 name from an NFS or Windows export; Python lists it
  with lone surrogates, which Parquet strings and JSON cursors cannot hold):
  `invalid_name`, its undecodable bytes written `\\xNN` in the URI
  (`backslashreplace`, the ledger's own escaping). Caveat: a file literally named
  with those four characters gets the same URI; both are then one ledger entry.
- a name fsspec/adlfs would parse into another path: `unreadable`. Found by
  experiment (adlfs 2026.8 on Azurite): tab, CR and LF are dropped from URLs
  (Python's `urlsplit` strips them), a `?` followed later by `#` is split into
  query and fragment, and `::` is read as a chain of URLs (on local disk too).
  Other control characters make Azurite fail the whole listing (HTTP 500: XML
  cannot carry them; real Azure percent-encodes them and the SDK decodes them), so
  no test can show them round-trip and Azure's naming rules advise against them:
  on Azure every C0 control character is refused. `?`, `#`, `%`, `*`, `[`, spaces
  at either end, non-ASCII and very long names round-trip and are read.

Archiving (Auto Loader's `cleanSource=MOVE`): with `archive_after_days` set, the
`archive_landed_files` job (bronze/archive.py) moves ingested files to
`<archive>/<ingest_date>/<path in the zone>`. The listing never descends into the
archive (nor into any top-level folder named `_*` or `.*`): it lists the root once
and each other top-level entry, so a tick costs the same with 100 or 100,000
archived files.
"""

import datetime as dt
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional, Union

import dagster as dg
from pydantic import Field

from .. import settings

# The ledger status of a name bronze must not open by its URI (not UTF-8, or one the store's
# client would read as another object): recorded, never opened.
INVALID_NAME = "invalid_name"
# A FIFO, socket or device named *.csv (or a link to one): opening it could block a worker forever.
NOT_A_REGULAR_FILE = "not_a_regular_file"

# Names of files still being written by their producer, never picked up (README: `*.part`, `*_tmp*`,
# `_*`, `.*`): a hidden or `_` name, `_tmp` anywhere, or a temporary suffix. A suffix, not a substring:
# `titles.part1.csv` or `netflix.tmpl.csv` are complete names, and were skipped without a word.
IN_PROGRESS_SUFFIXES = (".tmp", ".part", "._copying_")
AZURE_PROTOCOLS = ("abfs", "abfss", "az")
# The archive's folder when `archive_uri` is not set: `_` keeps it out of any listing of titles.
DEFAULT_ARCHIVE_FOLDER = "_archive"
# Names made of these characters alone need no round-trip check (the common case: keeps the
# listing of 10,000 files cheap); any other name is checked against fsspec's URL parsing.
_PLAIN_NAME = re.compile(r"[\w .,+=@~()\-/]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The part of a name adlfs passes through URL parsing unchanged.
_URL_SAFE_PREFIX = re.compile(r"[^\x00-\x1f\x7f?#]*")

# Environment variables read by `from_env` (values never appear in code or config files).
LANDING_ENV = settings.LANDING_ENV


class OutsideLandingZone(ValueError):
    """A name or URI that would resolve outside the landing zone (`../`, symlink)."""


@dataclass(frozen=True)
class LandedFile:
    uri: str
    size: int
    modified: Optional[dt.datetime]
    # The store's version tag of the content (Azure ETag); None on local disk.
    etag: Optional[str] = None
    # A ledger status decided from the listing alone (e.g. "invalid_name: ..."): never opened.
    problem: Optional[str] = None

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


def _special_file_problem(path: str) -> Optional[str]:
    """The status of a local entry that is not a regular file once links are followed, else None
    (a dangling link is left to the read, which fails at once and records it `unreadable`)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    return f"{NOT_A_REGULAR_FILE}: a FIFO, socket or device is never opened (it could block the reader): replace it with a file"


def is_in_progress(name: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    return base.startswith((".", "_")) or "_tmp" in base or base.endswith(IN_PROGRESS_SUFFIXES)


def _has_parent_segment(path: str) -> bool:
    return ".." in path.replace("\\", "/").split("/")


def escape_undecodable(text: str) -> str:
    """`text` itself when it is valid Unicode, else with the bytes Python could not decode
    (lone surrogates from `os.listdir`) written `\\xNN`: the same as the ledger's escaping."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes os.listdir could not decode
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")  # a surrogate that did not come from bytes
    return raw.decode("utf-8", "backslashreplace")


def _day(value: Union[dt.date, str]) -> str:
    """YYYY-MM-DD of a date, a datetime or an ISO string."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).date().isoformat() if value.tzinfo else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return dt.date.fromisoformat(str(value)[:10]).isoformat()


def archive_due(discovered_at: dt.datetime, now: dt.datetime, after_days: Optional[int]) -> bool:
    """Whether a file discovered at `discovered_at` has been kept `after_days` by `now` (None: never)."""
    if after_days is None:
        return False
    if discovered_at.tzinfo is None:  # the ledger holds UTC (delta-rs hands it back aware)
        discovered_at = discovered_at.replace(tzinfo=dt.timezone.utc)
    return now - discovered_at >= dt.timedelta(days=after_days)


def _field(entry: Any, name: str) -> Any:
    """A ledger row's field, from a dict (delta-rs, Spark Row.asDict) or an object (Claim)."""
    return entry[name] if isinstance(entry, dict) else getattr(entry, name)


class LandingZoneResource(dg.ConfigurableResource):
    """Lists `*.csv` files (nested folders allowed) under the landing zone, opens
    and hashes them, and lands files the way a producer does (temporary name, then rename)."""

    uri: str = Field(description="Local directory, file:// or abfs[s]://<container>[@<account>...]/<prefix>.")
    account_name: Optional[str] = Field(default=None, description="Azure storage account (from an EnvVar).")
    account_key: Optional[str] = Field(default=None, description="Azure account key (from an EnvVar).", repr=False)
    sas_token: Optional[str] = Field(default=None, description="Azure SAS token (from an EnvVar).", repr=False)
    connection_string: Optional[str] = Field(
        default=None, description="Azure connection string (from an EnvVar).", repr=False
    )
    blob_endpoint: Optional[str] = Field(
        default=None, description="Blob endpoint override, e.g. Azurite's http://127.0.0.1:10000/devstoreaccount1."
    )
    settle_seconds: float = Field(
        default=30.0,
        description="A file whose size and modification time have not changed for this long is complete.",
    )
    # What bronze accepts from one file (Auto Loader's per-file limits).
    max_file_bytes: int = Field(
        default=20 * 2**30, description="Larger files are refused (`file_too_large`) without being opened."
    )
    max_record_bytes: int = Field(
        default=16 * 2**20,
        description="Longest physical line or CSV record the parser holds; longer ones refuse the file (`line_too_long`).",
    )
    evidence_bytes: int = Field(
        default=64 * 2**10,
        description="At most this many bytes of a refused file's offending text are kept in quarantine as evidence.",
    )
    # How the landing-zone sensor requests runs.
    max_files_per_run: int = Field(default=500, description="Files in one requested run (a batch).")
    max_bytes_per_run: int = Field(default=10 * 2**30, description="Bytes in one requested run (a batch).")
    max_runs_per_hour: int = Field(default=60, description="Runs the sensor requests in any hour, retries included.")
    retry_base_seconds: float = Field(
        default=60.0, description="Wait before a failed batch is retried; doubles with each attempt."
    )
    retry_max_seconds: float = Field(default=3600.0, description="Longest wait between two attempts of a batch.")
    max_attempts: int = Field(
        default=3, description="Failed runs of a one-file batch before the file is recorded `failed`."
    )
    min_failing_seconds: float = Field(
        default=3600.0,
        description="How long a file's runs must have kept failing (besides `max_attempts` times) before it is "
        "recorded `failed`: an outage of the lake or the cluster shorter than this strands no file.",
    )
    # Archiving ingested files (Auto Loader's cleanSource=MOVE): off unless set.
    archive_after_days: Optional[int] = Field(
        default=None, description="Move ingested files older than this many days to the archive (None: never)."
    )
    archive_uri: Optional[str] = Field(
        default=None, description="Where archived files go, `<archive>/<ingest_date>/<name>`; default `<landing>/_archive`."
    )

    @classmethod
    def from_env(cls, default_uri: str, **kwargs: Any) -> "LandingZoneResource":
        """`NETFLIX_LANDING_URI` (default: the lake's landing folder) and the Azure
        settings of `LANDING_ENV`, each passed as a `dg.EnvVar` when it is set."""
        fields: dict[str, Any] = {field: dg.EnvVar(var) for field, var in LANDING_ENV.items() if settings.get(var)}
        return cls(uri=settings.get("NETFLIX_LANDING_URI", default_uri), **fields, **kwargs)

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

    def _archive_path(self, fs, root: str) -> str:
        """The archive folder as a path of the zone's file system (no protocol)."""
        path = root + "/" + DEFAULT_ARCHIVE_FOLDER if self.archive_uri is None else self._path_of(fs, self.archive_uri)
        if path == root or root.startswith(path + "/"):
            # Archived files would be listed again as new ones (or moved into themselves).
            raise ValueError(f"archive_uri {self.archive_uri!r} must not be the landing zone {self.uri!r} or hold it")
        return path

    def _path_of(self, fs, uri: str) -> str:
        """`uri` as a path of the zone's file system. Another store (or storage account) is
        refused: files are moved with the zone's credentials, and a move must stay a rename or
        a server-side copy."""
        protocol, _, rest = uri.partition("://") if "://" in uri else ("file", "", uri)
        if self.protocol in AZURE_PROTOCOLS:
            netloc = rest.split("/", 1)[0]
            account = netloc.split("@", 1)[1].split(".", 1)[0] if "@" in netloc else None
            same = protocol in AZURE_PROTOCOLS and account in (None, self.account_name or self._account_from_uri())
        else:
            same = protocol in ("file", "local")
        if not same:
            raise ValueError(f"archive_uri {uri!r} must be on the landing zone's store ({self.uri!r})")
        return fs._strip_protocol(uri).rstrip("/")

    # ------------------------------------------------------------ listing

    def list_files(self) -> list[LandedFile]:
        """Every complete-named `*.csv` under the zone, sorted by URI (one recursive listing)."""
        return self.scan()[0]

    def _entries(self, fs, root: str, archive: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(path, info) of everything under the zone but the archive: the root is listed once,
        then each top-level folder with one recursive listing (one request per page on Azure).
        Folders named `_*` or `.*` at the top (the archive, Spark's `_temporary`, hidden
        folders) are not descended into: their files are never titles files anyway, and the
        cost of a tick must not grow with what has been archived."""
        for info in fs.ls(root, detail=True):
            path = info["name"].rstrip("/")
            if path in (root, archive) or path.rsplit("/", 1)[-1].startswith(("_", ".")):
                continue
            if info.get("type") != "directory":
                yield path, info
                continue
            for sub, sub_info in self._find(fs, root, path).items():
                # An archive configured deeper inside the zone is skipped here, at the cost of listing it.
                if not sub.startswith(archive + "/"):
                    yield sub, sub_info

    def _find(self, fs, root: str, folder: str) -> dict[str, dict[str, Any]]:
        """Everything under `folder`, a top-level folder of the zone as listed. adlfs parses
        every path it is given as a URL, so on Azure a folder named `a?b#c` or holding a line
        feed would be listed as another one: it is listed by the part of its name before the
        first such character, as a prefix of the root, keeping only what is under it."""
        if self.protocol not in AZURE_PROTOCOLS:
            return fs.find(folder, detail=True)
        name = folder[len(root) + 1 :]
        safe = _URL_SAFE_PREFIX.match(name).group()
        found = fs.find(root, prefix=name + "/" if safe == name else safe, detail=True)
        return {path: info for path, info in found.items() if path.startswith(folder + "/")}

    def scan(self) -> tuple[list[LandedFile], list[str]]:
        """(landed files, URIs found under the zone that resolve outside it)."""
        fs, root = self.filesystem()
        if not fs.exists(root):
            return [], []
        fs.invalidate_cache(root)  # a long-lived process (the daemon) must see new blobs
        archive = self._archive_path(fs, root)
        found, escaped = [], []
        prefix = fs.unstrip_protocol(root)  # once, not per file: listing 10,000 files stays cheap
        for path, info in self._entries(fs, root, archive):
            # Anything but a folder: a symlink (fsspec types it "other") or a FIFO is listed too,
            # and bronze records why it cannot be read, rather than the file going unnoticed.
            if info.get("type") == "directory" or is_in_progress(path):
                continue
            if not path.rstrip().lower().endswith(".csv"):  # `x.csv ` (a trailing space) is meant as a CSV
                continue
            uri = prefix + path[len(root):] if path.startswith(root + "/") else fs.unstrip_protocol(path)
            if not self._inside(fs, root, path, is_link=bool(info.get("islink"))):
                escaped.append(escape_undecodable(uri))
                continue
            # Most names are plain: checked by one regular expression, the rest against fsspec's parsing.
            problem = None if _PLAIN_NAME.fullmatch(path, len(root)) else self._name_problem(fs, path, uri)
            if problem is None and info.get("type") != "file" and self.protocol == "file":
                problem = _special_file_problem(path)
            etag = info.get("etag")
            found.append(
                LandedFile(
                    uri=uri if problem is None else escape_undecodable(uri),
                    size=int(info.get("size") or 0),
                    modified=_modified(info),
                    etag=str(etag) if etag else None,
                    problem=problem,
                )
            )
        found.sort(key=lambda f: f.uri)
        return found, sorted(escaped)

    def _name_problem(self, fs, path: str, uri: str) -> Optional[str]:
        """The ledger status of a name bronze could not open by its URI (see the module docstring), else None."""
        if escape_undecodable(uri) != uri:
            return f"{INVALID_NAME}: the name is not valid UTF-8: rename it"
        if "::" in uri:
            return f"{INVALID_NAME}: the name contains '::', which fsspec reads as a chain of URLs: rename it"
        control = _CONTROL.search(path)
        if control and self.protocol in AZURE_PROTOCOLS:
            return (
                f"{INVALID_NAME}: the name contains the control character U+{ord(control.group()):04X}, which "
                "Azure Blob URLs do not carry (adlfs drops tab, CR and LF): rename it"
            )
        parsed = fs._strip_protocol(uri)
        if parsed != path:
            return (
                f"{INVALID_NAME}: fsspec parses this URI as {fs.unstrip_protocol(parsed)!r} ('?' then '#' is "
                "read as a query and a fragment): rename it"
            )
        return None

    def require_inside(self, uri: str) -> str:
        """`uri` itself if it names a file inside the zone, else OutsideLandingZone."""
        fs, root = self.filesystem()
        prefix = fs.unstrip_protocol(root)
        # A listed URI is taken as a string: parsing it as a URL would change the odd names
        # `scan` flags (so a requested file would never match its listing).
        path = root + uri[len(prefix) :] if uri.startswith(prefix + "/") else fs._strip_protocol(uri)
        if not self._inside(fs, root, path):
            raise OutsideLandingZone(f"{uri} is outside the landing zone {self.uri}")
        return prefix + path[len(root) :] if path.startswith(root + "/") else fs.unstrip_protocol(path)

    def exists(self, uri: str) -> bool:
        fs, _ = self.filesystem()
        return fs.exists(fs._strip_protocol(uri))

    def put_file(self, local_path: str, name: str) -> str:
        """Land a file the way a producer would: write under a temporary name, then rename."""
        if name.startswith("/") or _has_parent_segment(name):
            raise OutsideLandingZone(f"{name!r} would land outside the landing zone {self.uri}")
        fs, root = self.filesystem()
        target = posixpath.join(root, name)
        if fs._strip_protocol(fs.unstrip_protocol(target)) != target:
            # adlfs would write another name (see the module docstring): a producer using
            # another client (azcopy, the SDK) can still land it, and the listing flags it.
            raise ValueError(f"{name!r} cannot be addressed through fsspec on {self.uri}")
        if self.protocol == "file":
            fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{target}.part"
        fs.put_file(local_path, tmp)
        _move(fs, tmp, target, mark=False)
        return fs.unstrip_protocol(target)

    # ------------------------------------------------------------ archiving

    def root_uri(self) -> str:
        """The zone's root as the listing spells it (`file:///...`, `abfs://...`): the prefix
        of every landed file's URI, and what the ledger's relative paths are relative to."""
        fs, root = self.filesystem()
        return fs.unstrip_protocol(root)

    def archive_root_uri(self) -> str:
        """The archive folder's URI (`archive_uri`, default `<landing>/_archive`)."""
        fs, root = self.filesystem()
        return fs.unstrip_protocol(self._archive_path(fs, root))

    def archived_uri(self, uri: str, ingest_date: Union[dt.date, str]) -> str:
        """Where `archive` puts the landed file `uri` of day `ingest_date`:
        `<archive>/<YYYY-MM-DD>/<path relative to the landing root>`."""
        fs, root = self.filesystem()
        prefix = fs.unstrip_protocol(root)
        if not uri.startswith(prefix + "/"):
            raise OutsideLandingZone(f"{uri} is not in the landing zone {self.uri}")
        return f"{fs.unstrip_protocol(self._archive_path(fs, root))}/{_day(ingest_date)}/{uri[len(prefix) + 1:]}"

    def archive(self, entries: Iterable[Any], now: dt.datetime) -> list[tuple[str, str]]:
        """Move the files of `entries` (ledger rows as dicts, or `Claim`s: `path`, `ingest_date`,
        `discovered_at`) that are due by `now` to their `archived_uri`; returns the (uri,
        archived_uri) pairs moved by this call.

        Idempotent: a file already in the archive is skipped; a file in neither place is
        logged, not raised (removed by hand: the ledger still says what it held). A file in
        both places is left there, with a warning (a new file landed under an ingested name),
        unless it is an Azure move interrupted between its copy and its delete (the copy carries
        the source's ETag, set by the copy request itself): then the move is finished. On Azure
        the copy and the delete hold only while the source keeps the ETag the move read. A move that fails (permission,
        an outage) does not stop the others: OSError names them all at the end."""
        log = dg.get_dagster_logger()
        fs, root = self.filesystem()
        prefix, archive = fs.unstrip_protocol(root), self._archive_path(fs, root)
        moved: list[tuple[str, str]] = []
        failed: list[str] = []
        for entry in entries:
            uri = _field(entry, "path")
            if not archive_due(_field(entry, "discovered_at"), now, self.archive_after_days):
                continue
            target_uri = self.archived_uri(uri, _field(entry, "ingest_date"))
            # Paths by string arithmetic, not URL parsing (see `require_inside`).
            source, target = root + uri[len(prefix) :], archive + target_uri[len(fs.unstrip_protocol(archive)) :]
            in_zone, in_archive = fs.exists(source), fs.exists(target)
            if not in_zone:
                if not in_archive:
                    log.warning(f"not archived: {uri} is neither in the landing zone nor at {target_uri}")
                continue
            try:
                copy = _interrupted_move(fs, source, target) if in_archive else None
                if in_archive and copy is None:
                    log.warning(f"not archived: {uri} is also at {target_uri} (landed again under an ingested name?)")
                    continue
                if copy is not None and copy.finished:  # delete the source the copy was made of, or keep it
                    _azure(fs, _azure_delete, fs, source, copy.etag)
                else:  # nothing there yet, or a copy of this source that failed or never finished: copy again
                    _move(fs, source, target)
            except OSError as error:
                log.warning(f"not archived: {uri}: {error!r}")
                failed.append(f"{uri} ({type(error).__name__}: {error})")
                continue
            moved.append((uri, target_uri))
        if failed:
            raise OSError(f"{len(failed)} file(s) could not be archived ({len(moved)} were): {'; '.join(failed[:5])}")
        return moved


# Metadata on an archived blob: the ETag of the landed blob it was copied from.
_COPIED_FROM = "netflix_archived_from_etag"


def _is_local(fs) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def _move(fs, source: str, target: str, mark: bool = True) -> None:
    """Move one file, without `fs.mv` on object stores: there it expands `?`, `*` and `[` as
    glob patterns (a name with `?` lands as a folder). Local `mv` is a plain rename. `mark`:
    tag an Azure copy with its source's ETag (see `_interrupted_move`)."""
    if _is_local(fs):
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.mv(source, target)  # shutil.move: an atomic rename within one file system
        return
    # Azure Blob has no rename: a server-side copy, then the delete, both only while the source
    # keeps the ETag read here (a producer overwriting the name meanwhile keeps its new bytes).
    fs.invalidate_cache(fs._parent(source))
    info = fs.info(source)
    etag = str(info.get("etag") or "")
    _azure(fs, _azure_copy, fs, source, target, etag, {_COPIED_FROM: etag} if mark else None)
    fs.invalidate_cache(fs._parent(target))
    if fs.info(target).get("size") != info.get("size"):
        # Never delete the only complete copy; the next run finds both and finishes the move.
        raise OSError(f"the copy of {source} to {target} is incomplete; the source is kept")
    _azure(fs, _azure_delete, fs, source, etag)


@dataclass(frozen=True)
class _Copy:
    etag: str  # of the source it was copied from
    finished: bool  # False: the copy failed, was aborted or is still pending


def _interrupted_move(fs, source: str, target: str) -> Optional[_Copy]:
    """`target` as a copy of `source` as it is now (a move interrupted before its delete), or None
    when it is not one (other bytes landed under an ingested name). Azure only: a local move is a rename."""
    if _is_local(fs):
        return None
    fs.invalidate_cache(fs._parent(source))
    properties = _azure(fs, _blob(fs, target).get_blob_properties)
    copied_from = (properties.metadata or {}).get(_COPIED_FROM)
    if not copied_from or copied_from != str(fs.info(source).get("etag") or ""):
        return None
    return _Copy(copied_from, properties.copy is None or properties.copy.status in (None, "success"))


# How long a move waits for Azure to finish a server-side copy it runs in the background (a copy
# between accounts or of a large blob); the source stays until the copy has succeeded.
COPY_WAIT_SECONDS = 600


def _blob(fs, path: str):
    container, name, _ = fs.split_path(path)
    return fs.service_client.get_blob_client(container, name)


def _azure(fs, call, *args):
    """Run `call(*args)` (a coroutine function of the Azure SDK) on adlfs' event loop; Azure's
    errors become the OSError a failed move is (`archive` goes on with the other files)."""
    from azure.core.exceptions import AzureError, HttpResponseError, ResourceModifiedError, ResourceNotFoundError
    from fsspec.asyn import sync

    changed = OSError("the source changed during its move (another ETag): it is kept where it is")
    try:
        return sync(fs.loop, call, *args)
    except ResourceNotFoundError as error:
        raise FileNotFoundError(f"{getattr(error, 'reason', None) or error}") from None
    except ResourceModifiedError:
        raise changed from None
    except HttpResponseError as error:
        if getattr(error, "error_code", None) == "SourceConditionNotMet":  # the copy's source condition
            raise changed from None
        raise OSError(f"{type(error).__name__}: {getattr(error, 'reason', None) or error}") from None
    except AzureError as error:
        raise OSError(f"{type(error).__name__}: {getattr(error, 'reason', None) or error}") from None


async def _azure_copy(fs, source: str, target: str, etag: str, metadata: Optional[dict]) -> None:
    """A server-side copy of `source` (only while it has `etag`) with `metadata` set by the copy
    itself, so no copy exists untagged; waits for a copy Azure finishes in the background."""
    import asyncio
    import time

    from azure.core import MatchConditions

    target_blob = _blob(fs, target)
    condition = {"source_etag": etag, "source_match_condition": MatchConditions.IfNotModified} if etag else {}
    started = await target_blob.start_copy_from_url(_blob(fs, source).url, metadata=metadata, **condition)
    status, deadline = started.get("copy_status"), time.monotonic() + COPY_WAIT_SECONDS
    while status == "pending" and time.monotonic() < deadline:
        await asyncio.sleep(1)
        status = (await target_blob.get_blob_properties()).copy.status
    if status != "success":
        raise OSError(f"the copy of {source} to {target} is {status!r}; the source is kept")


async def _azure_delete(fs, source: str, etag: str) -> None:
    from azure.core import MatchConditions

    condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
    await _blob(fs, source).delete_blob(**condition)
