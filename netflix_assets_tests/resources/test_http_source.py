"""HttpSourceResource against a real, fault-injecting HTTP server on loopback.

Each test scripts, per path, the answers the server gives to successive
requests (500, a stall past the client's timeout, a reset connection, an
oversized body...) and then checks what the client did and what the server saw.
Retry counts are asserted on the server's own request log (the requests it received for
the path), besides the client's `attempts`.

Timing, sized for a loaded 2-core machine: the client's timeout (CLIENT_TIMEOUT, 2 s) is
far beyond what any answered request takes even there, so it fires only where a test
makes the server stall, and a stall lasts until the test ends (STALL is only a bound).
No Spark, no sleeping beyond those few timeouts: the client is configured with
`backoff_seconds=0.01`, and the test of the deadline across retries runs on a fake clock.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import http.server
import socket
import struct
import threading
import types
import urllib.error

import pytest

from netflix_assets.resources import http_source
from netflix_assets.resources.http_source import (
    BUNDLED_TUTORIAL_DIR,
    FetchError,
    FetchResult,
    HttpSourceResource,
    SourceFile,
    redact_url,
    sha256,
)

# Seconds. Every test but the few that make the server stall depends on no timeout firing:
# 2 s is far beyond a loopback answer even on a loaded machine, and costs ~2 s only in the
# two tests whose server stalls (a read timeout is what they test).
CLIENT_TIMEOUT = 2.0
# The "sleep" action stalls until the test ends (its fixture releases it), at most this long:
# clearly past the client's timeout, whatever the load.
STALL = 30.0
BODY = b"show_id,cast\ns1,Alice\ns2,Bob\n"
ITEM = SourceFile(folder_name="netflix_cast", file_name="netflix_cast.csv")
PATH = "/lookup/netflix_cast.csv"


def quoted_etag(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()}"'


class FaultServer:
    """Scripted behaviour per path, and a record of every request received.

    Actions (consumed one per request; when a path's queue is empty it serves `ok`):
      "500", "503", "404", ...  answer with that status and a short body
      "sleep"        stall until the test ends (at most STALL, far past the client's timeout), then hang up
      "reset"        close the connection at once with a TCP RST, no answer
      "drop"         close the connection at once (FIN), no answer
      "truncated"    announce the body's length, send part of it, hang up
      "ok"           serve `bodies[path]` with ETag = quoted sha256, honour If-None-Match (304)
      "big_length"   announce a Content-Length of `big_size` bytes
      "big_chunked"  stream `big_size` bytes with Transfer-Encoding: chunked
      "big_stream"   stream `big_size` bytes with no length, ended by closing
      "trickle"      announce `bodies[path]`'s length, then send it one byte every
                     `trickle_interval` seconds (well inside the client's read timeout)
    """

    def __init__(self, httpd: http.server.ThreadingHTTPServer):
        self.httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        self.bodies: dict[str, bytes] = {}
        self.big_size = 2 * 1024 * 1024
        self.trickle_interval = 0.05
        self.stop = threading.Event()
        self._scripts: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def script(self, path: str, *actions: str) -> None:
        with self._lock:
            self._scripts[path].extend(actions)

    def next_action(self, path: str, headers) -> str:
        with self._lock:
            self._requests.append((path, dict(headers.items())))
            queue = self._scripts[path.split("?", 1)[0]]
            return queue.popleft() if queue else "ok"

    def requests(self, path: str | None = None) -> list[tuple[str, dict[str, str]]]:
        with self._lock:
            return [r for r in self._requests if path is None or r[0].split("?", 1)[0] == path]


class _FaultHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # needed for chunked responses
    server_version = "FaultServer"

    def log_message(self, *args):  # keep pytest output readable
        pass

    def do_GET(self):
        fault: FaultServer = self.server.fault
        action = fault.next_action(self.path, self.headers)
        path = self.path.split("?", 1)[0]
        self.close_connection = True
        try:
            self._act(fault, action, path)
        except OSError:  # the client gave up (timeout, size refused): expected
            pass

    def _act(self, fault: FaultServer, action: str, path: str) -> None:
        if action.isdigit():
            self._answer(int(action), b"scripted failure\n")
        elif action == "sleep":
            fault.stop.wait(STALL)
        elif action == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        elif action == "drop":
            self.connection.shutdown(socket.SHUT_RDWR)
        elif action == "truncated":
            body = fault.bodies[path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        elif action == "ok":
            body = fault.bodies[path]
            etag = quoted_etag(body)
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
            else:
                self._answer(200, body, {"ETag": etag, "Content-Type": "text/csv"})
        elif action == "big_length":
            self.send_response(200)
            self.send_header("Content-Length", str(fault.big_size))
            self.end_headers()
            self.wfile.write(b"x" * 1024)
        elif action == "big_chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            for _ in range(fault.big_size // len(chunk)):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        elif action == "trickle":
            body = fault.bodies[path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            for byte in body:
                if fault.stop.wait(fault.trickle_interval):
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        elif action == "big_stream":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"x" * 65536
            for _ in range(fault.big_size // len(chunk)):
                self.wfile.write(chunk)
        else:
            raise AssertionError(f"unknown scripted action {action!r}")

    def _answer(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # resets are the point here
        pass


@pytest.fixture
def fault_server():
    httpd = _QuietServer(("127.0.0.1", 0), _FaultHandler)
    fault = FaultServer(httpd)
    fault.bodies[PATH] = BODY
    httpd.fault = fault
    # A short poll interval: shutdown() waits up to one interval (0.5 s by default).
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield fault
    finally:
        fault.stop.set()  # release any stalled handler
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class RecordingLog:
    def __init__(self):
        self.warnings: list[str] = []

    def warning(self, message, *args):
        self.warnings.append(message % args if args else message)


def make_source(base_url: str, **overrides) -> HttpSourceResource:
    settings = dict(
        base_url=base_url,
        files=[ITEM],
        retries=3,
        backoff_seconds=0.01,
        timeout_seconds=CLIENT_TIMEOUT,
        max_bytes=1024 * 1024,
    )
    settings.update(overrides)
    return HttpSourceResource(**settings)


@pytest.fixture
def source(fault_server):
    return make_source(f"{fault_server.url}/lookup")


# --- retries ---------------------------------------------------------------


def test_recovers_after_500_and_503(fault_server, source):
    fault_server.script(PATH, "500", "503", "ok")
    log = RecordingLog()

    result = source.fetch(ITEM, log=log)

    assert result == FetchResult(
        url=f"{fault_server.url}{PATH}", data=BODY, etag=quoted_etag(BODY), status=200, attempts=3
    )
    assert sha256(result.data) == quoted_etag(BODY).strip('"')
    assert len(fault_server.requests(PATH)) == 3
    assert len(log.warnings) == 2
    assert "HTTP 500" in log.warnings[0] and "HTTP 503" in log.warnings[1]
    # exponential backoff: 0.01 s, then 0.02 s
    assert "retrying in 0.01s" in log.warnings[0] and "retrying in 0.02s" in log.warnings[1]


@pytest.mark.parametrize("status", ["408", "429", "502", "504"])
def test_retryable_statuses(fault_server, source, status):
    fault_server.script(PATH, status, "ok")
    result = source.fetch(ITEM)
    assert len(fault_server.requests(PATH)) == 2 == result.attempts


def test_recovers_after_read_timeout(fault_server, source):
    fault_server.script(PATH, "sleep", "ok")
    log = RecordingLog()

    result = source.fetch(ITEM, log=log)

    assert (result.data, result.attempts) == (BODY, 2)
    assert len(fault_server.requests(PATH)) == 2
    assert "timed out" in log.warnings[0]


def test_recovers_after_connect_timeout(fault_server, source, monkeypatch):
    # A connect timeout cannot be provoked reliably on loopback: fake just the
    # first connection, as urllib reports it (URLError wrapping socket.timeout).
    real_urlopen = http_source._urlopen
    calls = []

    def flaky_urlopen(request, timeout):
        calls.append(request.full_url)
        if len(calls) == 1:
            raise urllib.error.URLError(socket.timeout("timed out"))
        return real_urlopen(request, timeout)

    monkeypatch.setattr(http_source, "_urlopen", flaky_urlopen)
    log = RecordingLog()

    result = source.fetch(ITEM, log=log)

    assert (result.data, result.attempts) == (BODY, 2)
    assert len(fault_server.requests(PATH)) == 1
    assert "timed out" in log.warnings[0]


@pytest.mark.parametrize(
    ("fault", "seen"),
    [
        ("reset", "ConnectionResetError"),
        ("drop", "RemoteDisconnected"),
        # http.client's read(amt) returns a short body silently: the client must count.
        ("truncated", f"connection closed mid-body ({len(BODY) // 2} of {len(BODY)} bytes read)"),
    ],
)
def test_recovers_after_connection_reset(fault_server, source, fault, seen):
    fault_server.script(PATH, fault, "ok")
    log = RecordingLog()

    result = source.fetch(ITEM, log=log)

    assert (result.data, result.status, result.attempts) == (BODY, 200, 2)
    assert len(fault_server.requests(PATH)) == 2
    assert len(log.warnings) == 1 and seen in log.warnings[0]


def test_fails_clearly_after_last_retry(fault_server):
    source = make_source(f"{fault_server.url}/lookup", retries=2)
    fault_server.script(PATH, "503", "500", "sleep", "ok")
    log = RecordingLog()

    with pytest.raises(FetchError) as caught:
        source.fetch(ITEM, log=log)

    message = str(caught.value)
    assert f"{fault_server.url}{PATH}" in message
    assert "3 attempt(s)" in message
    assert "timed out" in message  # the last problem, not the first
    assert len(fault_server.requests(PATH)) == 3  # retries + 1
    assert len(log.warnings) == 2  # no "retrying" after the last attempt


def test_connection_refused_is_retried_then_fails():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = make_source(f"http://127.0.0.1:{port}/lookup", retries=1)

    with pytest.raises(FetchError, match=r"failed after 2 attempt\(s\).*ConnectionRefusedError"):
        source.fetch(ITEM)


def test_404_fails_at_once(fault_server, source):
    fault_server.script(PATH, "404")
    log = RecordingLog()

    with pytest.raises(FetchError) as caught:
        source.fetch(ITEM, log=log)

    assert "HTTP 404" in str(caught.value) and f"{fault_server.url}{PATH}" in str(caught.value)
    assert "not retried" in str(caught.value)
    assert len(fault_server.requests(PATH)) == 1
    assert log.warnings == []


# --- size limit --------------------------------------------------------------


@pytest.mark.parametrize("action", ["big_length", "big_chunked", "big_stream"])
def test_size_limit_refused_without_retry(fault_server, action):
    source = make_source(f"{fault_server.url}/lookup", max_bytes=100_000)
    fault_server.script(PATH, action)

    with pytest.raises(FetchError, match="max_bytes=100000, refused"):
        source.fetch(ITEM)

    assert len(fault_server.requests(PATH)) == 1


def test_body_of_exactly_max_bytes_is_accepted(fault_server):
    fault_server.bodies[PATH] = b"y" * 3000
    source = make_source(f"{fault_server.url}/lookup", max_bytes=3000)
    assert source.fetch(ITEM).data == b"y" * 3000


# --- total deadline ----------------------------------------------------------

# Sized for a loaded 2-core machine: the trickle's gaps (0.05 s) stay far inside the
# read timeout (2 s), so only the deadline can end the fetch; the deadline (which also bounds
# the wait for the response's headers) is as long as the client's timeout elsewhere.
TRICKLE_TIMEOUT = CLIENT_TIMEOUT
DEADLINE = 2.0


def test_trickling_body_fails_at_the_deadline_without_retry(fault_server):
    import time

    fault_server.bodies[PATH] = b"z" * 2000  # 100 s at one byte per 0.05 s, far past the deadline
    fault_server.script(PATH, "trickle", "trickle", "trickle", "trickle")
    source = make_source(f"{fault_server.url}/lookup", timeout_seconds=TRICKLE_TIMEOUT, deadline_seconds=DEADLINE)
    log = RecordingLog()

    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        source.fetch(ITEM, log=log)
    elapsed = time.monotonic() - started

    message = str(caught.value)
    assert f"deadline_seconds={DEADLINE:g}" in message and "not retried" in message
    assert f"{fault_server.url}{PATH}" in message
    assert DEADLINE <= elapsed < DEADLINE + TRICKLE_TIMEOUT  # at most one read past the deadline
    assert len(fault_server.requests(PATH)) == 1  # the deadline is final: no second attempt
    assert log.warnings == []


class FakeClock:
    """http_source's monotonic clock, moved only by its backoff waits (which return at once)."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(http_source, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(http_source, "_sleep", clock.sleep)
    return clock


def test_deadline_also_bounds_retries_and_backoff(fault_server, fake_clock):
    # Each 503 is answered at once (no time passes on the fake clock); backoffs of 10 s then
    # 20 s are waited, the third (40 s, at 30 s) would end past the deadline (65 s).
    fault_server.script(PATH, "503", "503", "503", "503")
    source = make_source(f"{fault_server.url}/lookup", backoff_seconds=10, deadline_seconds=65)

    with pytest.raises(FetchError, match=r"deadline_seconds=65 would pass before attempt 4 of 4.*HTTP 503"):
        source.fetch(ITEM)

    assert len(fault_server.requests(PATH)) == 3
    assert fake_clock.sleeps == [10, 20]


def test_default_deadline_is_sized_for_the_largest_file():
    source = HttpSourceResource()
    assert source.deadline_seconds == 600
    # The largest accepted body at 0.5 MB/s still fits.
    assert source.max_bytes / 0.5e6 < source.deadline_seconds


# --- conditional GET ---------------------------------------------------------


def test_if_none_match_sent_and_304_returns_no_data(fault_server, source):
    first = source.fetch(ITEM)
    assert "If-None-Match" not in fault_server.requests(PATH)[0][1]

    again = source.fetch(ITEM, etag=first.etag)

    assert fault_server.requests(PATH)[1][1]["If-None-Match"] == first.etag
    assert again == FetchResult(url=first.url, data=None, etag=first.etag, status=304, attempts=1)
    assert again.not_modified


def test_304_after_a_retry(fault_server, source):
    fault_server.script(PATH, "503", "ok")
    result = source.fetch(ITEM, etag=quoted_etag(BODY))
    assert (result.status, result.data, result.attempts) == (304, None, 2)
    assert len(fault_server.requests(PATH)) == 2
    assert all(h["If-None-Match"] == quoted_etag(BODY) for _, h in fault_server.requests(PATH))


def test_changed_body_returns_200_with_new_etag(fault_server, source):
    old = source.fetch(ITEM)
    fault_server.bodies[PATH] = BODY + b"s3,Carol\n"

    new = source.fetch(ITEM, etag=old.etag)

    assert fault_server.requests(PATH)[1][1]["If-None-Match"] == old.etag
    assert (new.status, new.data) == (200, BODY + b"s3,Carol\n")
    assert new.etag == quoted_etag(BODY + b"s3,Carol\n") != old.etag


def test_fetch_result_is_frozen(fault_server, source):
    result = source.fetch(ITEM)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.data = b""


# --- secrets -----------------------------------------------------------------

SAS = "sv=2024-05-04&se=2030-01-01&sp=r&sig=TOPSECRETSIGNATURE%3D"


def test_sas_query_string_is_sent_but_never_shown(fault_server):
    source = make_source(f"{fault_server.url}/lookup?{SAS}", retries=1)
    fault_server.script(PATH, "500", "500")
    log = RecordingLog()

    with pytest.raises(FetchError) as caught:
        source.fetch(ITEM, log=log)

    # the token reaches the server, after the file name...
    assert [path for path, _ in fault_server.requests(PATH)] == [f"{PATH}?{SAS}"] * 2
    # ...and shows nowhere
    message = str(caught.value)
    assert f"{fault_server.url}{PATH}?<redacted>" in message
    assert "2 attempt(s)" in message
    for text in [message, *log.warnings]:
        assert "TOPSECRET" not in text and "sig=" not in text
    assert log.warnings and all("?<redacted>" in w for w in log.warnings)


def test_sas_query_string_hidden_in_404_and_result_repr(fault_server):
    source = make_source(f"{fault_server.url}/lookup?{SAS}")
    result = source.fetch(ITEM)
    assert result.url.endswith(SAS)  # the caller can still use the real URL
    assert "TOPSECRET" not in repr(result) and "<redacted>" in repr(result)

    fault_server.script(PATH, "404")
    with pytest.raises(FetchError) as caught:
        source.fetch(ITEM)
    assert "TOPSECRET" not in str(caught.value)


def _stored_error(error: BaseException) -> str:
    """The text Dagster stores for a step that raised `error`: its message and causes."""
    from dagster_shared.error import SerializableErrorInfo

    return SerializableErrorInfo.from_traceback(__import__("traceback").TracebackException.from_exception(error)).to_string()


@pytest.mark.parametrize("base", ["https://svcuser:S3cretPw@example.invalid/lookups", "https://svcuser:S3cretPw@127.0.0.1:9/lookups"])
def test_credentials_in_the_url_show_nowhere_in_the_stored_failure(base):
    # http.client quotes the password alone ("nonnumeric port: 'S3cretPw@example.invalid'"), and
    # a chained cause is stored with the step's failure unscrubbed.
    with pytest.raises(FetchError) as caught:
        make_source(base, retries=0).fetch(ITEM)
    stored = _stored_error(caught.value)
    assert "S3cret" not in stored and "svcuser" not in stored and "<redacted>@" in stored, stored


def test_redact_url():
    assert redact_url("https://a.blob.core.windows.net/c/f.csv?sv=1&sig=x") == (
        "https://a.blob.core.windows.net/c/f.csv?<redacted>"
    )
    assert redact_url("https://user:pw@host/f.csv#frag") == "https://<redacted>@host/f.csv#<redacted>"
    assert redact_url("file:///tmp/f.csv") == "file:///tmp/f.csv"


# --- file:// and misconfiguration ---------------------------------------------


def test_file_url(tmp_path):
    (tmp_path / "netflix_cast.csv").write_bytes(BODY)
    source = make_source(tmp_path.as_uri())

    result = source.fetch(ITEM)

    assert result == FetchResult(
        url=f"{tmp_path.as_uri()}/netflix_cast.csv", data=BODY, etag=None, status=200, attempts=1
    )


def test_file_url_size_limit_and_missing_file(tmp_path):
    (tmp_path / "netflix_cast.csv").write_bytes(b"z" * 5000)
    with pytest.raises(FetchError, match="Content-Length 5000 exceeds max_bytes=4096"):
        make_source(tmp_path.as_uri(), max_bytes=4096).fetch(ITEM)

    log = RecordingLog()
    with pytest.raises(FetchError, match="not retried"):
        make_source((tmp_path / "nowhere").as_uri()).fetch(ITEM, log=log)
    assert log.warnings == []


def test_bundled_default_still_works():
    source = HttpSourceResource()
    item = source.source_file("netflix_category")
    result = source.fetch(item)
    assert (result.status, result.attempts) == (200, 1)
    assert result.data == (BUNDLED_TUTORIAL_DIR / "netflix_category.csv").read_bytes()


def test_unsupported_scheme_refused():
    with pytest.raises(FetchError, match="unsupported URL scheme 'ftp'"):
        make_source("ftp://example.invalid/lookup").fetch(ITEM)


@pytest.mark.parametrize(
    "setting", [{"retries": -1}, {"timeout_seconds": 0}, {"max_bytes": 0}, {"backoff_seconds": -1}, {"deadline_seconds": 0}]
)
def test_nonsense_settings_rejected(setting):
    with pytest.raises(Exception, match="validation error"):
        HttpSourceResource(**setting)
