"""The lookup files pulled over HTTP, as the original ADF ForEach copy did.

`HttpSourceResource.fetch` makes a GET for one configured file and:

* retries with exponential backoff on HTTP 5xx, 408 and 429, on connect and
  read timeouts and on dropped or reset connections; any other HTTP error
  (404, 403, ...) fails at once;
* refuses a body larger than `max_bytes`, whether announced by Content-Length
  or found while streaming it in chunks of at most 1 MiB (never read all at once);
* gives up on a file when `deadline_seconds` have passed since its fetch began,
  retries and backoff included: `timeout_seconds` bounds each read, so a server
  that trickles one byte every 20 s would otherwise hold the daily run (and, with
  prod's limit of one run per day, every other run of that day) forever. A deadline
  that passes is final, not a retryable attempt: it is the file's whole budget,
  and a retry would only make the run wait again for a server already seen too
  slow (the run itself can be retried, or the next tick pulls again). It is
  checked between reads, each bounded by `timeout_seconds`, so a fetch ends
  within `deadline_seconds + timeout_seconds`;
* makes a conditional GET (`If-None-Match`) when given the ETag of the copy the
  caller already has, and reports a 304 as `FetchResult(data=None)`;
* never writes a URL's query string (a SAS token) or user info into a log line
  or an error message: see `redact_url`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from ..transforms.formats import LOOKUPS

BUNDLED_TUTORIAL_DIR = Path(__file__).resolve().parent.parent / "data" / "netflix_tutorial"

CHUNK_BYTES = 1 << 20  # read the body 1 MiB at a time
RETRYABLE_STATUS = frozenset({408, 429})  # besides every 5xx
SUPPORTED_SCHEMES = ("http", "https", "file")


class SourceFile(dg.Config):
    """One item of the ForEach: the dataset folder and the file name under the base URL."""

    folder_name: str
    file_name: str


DEFAULT_FILES = [
    SourceFile(folder_name=LOOKUPS[name].table, file_name=LOOKUPS[name].file_name) for name in sorted(LOOKUPS)
]


class FetchError(Exception):
    """A download that failed for good (after its retries, or at once when retrying cannot help).

    Its message names the URL with the query string redacted.
    """


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """What one `fetch` got.

    `data` is None when the server answered 304 Not Modified to the ETag sent;
    `etag` is then the one sent, else the response's ETag header (None if it
    had none, and always for file://). `status` is 200 or 304 (200 for file://).
    """

    url: str
    data: Optional[bytes]
    etag: Optional[str]
    status: int
    attempts: int

    @property
    def not_modified(self) -> bool:
        return self.data is None

    def __repr__(self) -> str:  # no secret query string, no megabytes of data
        size = "None" if self.data is None else f"<{len(self.data)} bytes>"
        return (
            f"FetchResult(url={redact_url(self.url)!r}, data={size}, etag={self.etag!r}, "
            f"status={self.status}, attempts={self.attempts})"
        )


def redact_url(url: str) -> str:
    """`url` fit for logs and error messages: no query string, fragment or user info.

    >>> redact_url("https://acct.blob.core.windows.net/c/f.csv?sv=2022&sig=abc")
    'https://acct.blob.core.windows.net/c/f.csv?<redacted>'
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "<redacted>@" + netloc.rsplit("@", 1)[1]
    query = "<redacted>" if parts.query else ""
    fragment = "<redacted>" if parts.fragment else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _scrub(text: str, url: str) -> str:
    """Remove any secret part of `url` that an exception's text may repeat."""
    parts = urllib.parse.urlsplit(url)
    secrets = [url, parts.query, parts.fragment]
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        # http.client quotes a part of it alone: "nonnumeric port: '<password>@host'".
        secrets += [userinfo, *userinfo.split(":", 1)]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, redact_url(url) if secret == url else "<redacted>")
    return text


def _chained(error: Optional[BaseException], url: str) -> Optional[BaseException]:
    """`error` as the cause of a FetchError, unless `url` holds a secret: the cause's own text is
    not scrubbed (http.client's InvalidURL quotes the password), and Dagster stores a failure's
    causes with the step's event. The FetchError's message names the cause, scrubbed."""
    return error if redact_url(url) == url else None


def _sleep(seconds: float) -> None:
    """The backoff wait (one place to change it; tests simply configure a short backoff)."""
    time.sleep(seconds)


def _urlopen(request: urllib.request.Request, timeout: float):
    """The one call that opens a connection (a seam for tests that fake the network)."""
    return urllib.request.urlopen(request, timeout=timeout)


class _Retryable(Exception):
    """A transient failure of one attempt; `problem` is already redacted."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem


def _close_quietly(err: urllib.error.HTTPError) -> None:
    try:
        err.close()
    except Exception:  # an HTTPError built without a body has nothing to close
        pass


def _is_transient(err: BaseException) -> bool:
    """Timeouts (connect or read) and connections dropped or reset by the peer."""
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        reason = err.reason
        return isinstance(reason, BaseException) and _is_transient(reason)
    if isinstance(err, (TimeoutError, socket.timeout, ConnectionError)):
        # RemoteDisconnected is a ConnectionResetError, so it is covered here.
        return True
    if isinstance(err, http.client.IncompleteRead):
        return True
    if isinstance(err, socket.gaierror):
        return err.errno == socket.EAI_AGAIN  # temporary DNS failure only
    return False


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        if isinstance(err.reason, BaseException):
            return _describe(err.reason)
        return f"URLError: {err.reason}"
    if isinstance(err, (TimeoutError, socket.timeout)):
        return f"timed out ({type(err).__name__}: {err})" if str(err) else "timed out"
    if isinstance(err, http.client.IncompleteRead):
        return f"connection closed mid-body (IncompleteRead, {len(err.partial)} bytes read)"
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class HttpSourceResource(dg.ConfigurableResource):
    """Pulls `<base_url>/<file_name>` with retries, a size limit and conditional GETs.

    The embedded default serves the bundled copies through a `file://` URL, the
    same code path as `https://` (urllib handles both). `base_url` may carry a
    query string (e.g. a SAS token): it is appended after the file name, and is
    redacted from every log line and error message.
    """

    # repr=False on every field that may hold a credential (a SAS in a URL): no repr of a resource
    # (a log line, an error message) shows it.
    base_url: str = Field(default=BUNDLED_TUTORIAL_DIR.as_uri(), description="Where the lookup files are served.", repr=False)
    files: list[SourceFile] = Field(default_factory=lambda: list(DEFAULT_FILES))
    timeout_seconds: float = Field(default=30.0, gt=0, description="Connect and per-read socket timeout.")
    max_bytes: int = Field(default=256 * 1024 * 1024, gt=0, description="Refuse larger downloads.")
    retries: int = Field(default=3, ge=0, description="Attempts after the first, on 5xx/408/429, timeouts and resets.")
    backoff_seconds: float = Field(
        default=1.0, ge=0, description="Wait before the first retry; doubled before each next one."
    )
    max_backoff_seconds: float = Field(default=60.0, ge=0, description="Cap on any one backoff wait.")
    # 600 s: the largest accepted file (max_bytes, 256 MiB) at ~0.5 MB/s; the lookup files
    # are a few MB, so only a stuck or trickling server ever reaches it.
    deadline_seconds: float = Field(
        default=600.0,
        gt=0,
        description="Give up on a file after this long, retries and backoff included (not retried).",
    )

    def source_file(self, folder_name: str) -> SourceFile:
        for item in self.files:
            if item.folder_name == folder_name:
                return item
        raise KeyError(f"no source file configured for {folder_name!r}")

    def url_for(self, item: SourceFile) -> str:
        """The full URL of `item`, query string (secret) included: log `redact_url(url)` instead."""
        parts = urllib.parse.urlsplit(self.base_url)
        # Quote what a URL cannot hold (spaces...), keep any %-escapes already there.
        path = f"{parts.path.rstrip('/')}/{urllib.parse.quote(item.file_name, safe='/%')}"
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))

    def fetch(self, item: SourceFile, etag: Optional[str] = None, log=None) -> FetchResult:
        """GET `item`, retrying transient failures; raise FetchError when it cannot.

        With `etag`, sends `If-None-Match` and returns `data=None, status=304`
        if the server says the copy is unchanged. `log` (anything with
        `.warning`) hears about each retry.
        """
        url = self.url_for(item)
        shown = redact_url(url)
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in SUPPORTED_SCHEMES:
            raise FetchError(f"GET {shown}: unsupported URL scheme {scheme!r} (use one of {', '.join(SUPPORTED_SCHEMES)})")
        attempts = self.retries + 1
        deadline = time.monotonic() + self.deadline_seconds
        for attempt in range(1, attempts + 1):
            try:
                return self._fetch_once(url, etag, attempt, deadline)
            except _Retryable as err:
                problem, cause = err.problem, err.__cause__
            if attempt == attempts:
                break
            delay = min(self.backoff_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)
            if time.monotonic() + delay >= deadline:
                raise FetchError(
                    f"GET {shown}: deadline_seconds={self.deadline_seconds:g} would pass before attempt "
                    f"{attempt + 1} of {attempts}, given up; last problem: {problem}"
                ) from _chained(cause, url)
            if log is not None:
                log.warning(
                    f"GET {shown}: {problem}; retrying in {delay:.2f}s (attempt {attempt} of {attempts} failed)"
                )
            _sleep(delay)
        raise FetchError(f"GET {shown} failed after {attempts} attempt(s); last problem: {problem}") from _chained(cause, url)

    def _fetch_once(self, url: str, etag: Optional[str], attempt: int, deadline: float) -> FetchResult:
        """One attempt: a FetchResult, or _Retryable, or FetchError (no point retrying)."""
        shown = redact_url(url)
        headers = {"If-None-Match": etag} if etag else {}
        request = urllib.request.Request(url, headers=headers, method="GET")
        # Connecting and each read wait at most timeout_seconds, and never much past the deadline.
        timeout = max(min(self.timeout_seconds, deadline - time.monotonic()), 0.001)
        try:
            with _urlopen(request, timeout) as response:
                status = getattr(response, "status", None) or 200  # None for file://
                declared = self._check_length(response.headers.get("Content-Length"), shown)
                data = self._read_body(response, shown, deadline)
                chunked = "chunked" in (response.headers.get("Transfer-Encoding") or "").lower()
                if declared is not None and not chunked and len(data) < declared:
                    # http.client's read1/read(amt) return a short body silently, no IncompleteRead.
                    raise _Retryable(f"connection closed mid-body ({len(data)} of {declared} bytes read)")
                return FetchResult(
                    url=url, data=data, etag=response.headers.get("ETag"), status=status, attempts=attempt
                )
        except urllib.error.HTTPError as err:
            _close_quietly(err)  # release the connection behind the error response
            code = err.code
            if code == 304 and etag:  # the copy the caller has (the one `etag` names) is current
                return FetchResult(url=url, data=None, etag=etag, status=304, attempts=attempt)
            problem = f"HTTP {code} {_scrub(str(err.reason or ''), url)}".rstrip()
            if code >= 500 or code in RETRYABLE_STATUS:
                raise _Retryable(problem) from err
            raise FetchError(f"GET {shown} failed with {problem} on attempt {attempt} (not retried)") from _chained(err, url)
        except FetchError:
            raise
        except ValueError as err:  # malformed URL (http.client.InvalidURL...): its text may quote the URL
            raise FetchError(f"GET {shown}: invalid URL ({type(err).__name__}: {_scrub(str(err), url)})") from None
        except (OSError, http.client.HTTPException) as err:  # URLError is an OSError
            problem = _scrub(_describe(err), url)
            if _is_transient(err):
                raise _Retryable(problem) from err
            raise FetchError(f"GET {shown} failed on attempt {attempt} (not retried): {problem}") from _chained(err, url)

    def _check_length(self, header: Optional[str], shown: str) -> Optional[int]:
        """The announced length (None if absent or unreadable); FetchError if over the limit."""
        if header is None:
            return None
        try:
            length = int(header)
        except ValueError:
            return None  # the streamed count still applies
        if length > self.max_bytes:
            raise FetchError(
                f"GET {shown}: Content-Length {length} exceeds max_bytes={self.max_bytes}, refused"
            )
        return length

    def _read_body(self, response, shown: str, deadline: float) -> bytes:
        chunks, size = [], 0
        # read1 returns whatever has arrived (one socket read at most), where read(n) waits for
        # all n bytes: a trickling server would keep read(n) busy for ever, unseen by the deadline.
        read = getattr(response, "read1", None) or response.read
        while True:
            if time.monotonic() > deadline:
                raise FetchError(
                    f"GET {shown}: not complete after deadline_seconds={self.deadline_seconds:g} ({size} bytes "
                    "read; the server sends too slowly), given up (not retried: the deadline bounds the whole fetch)"
                )
            # Never ask for more than one byte past the limit, so an oversized
            # stream is refused as soon as it crosses it.
            chunk = read(min(CHUNK_BYTES, self.max_bytes + 1 - size))
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(f"GET {shown}: body exceeds max_bytes={self.max_bytes}, refused")
            chunks.append(chunk)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
