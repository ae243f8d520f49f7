"""Streaming CSV parsing of landed files into bronze records.

Runs inside Spark tasks (`mapInArrow`), one file at a time, with memory bounded
by one batch: a file is never collected to the driver. Python's csv module is
used because bronze must keep what Spark's CSV reader cannot give: the 1-based
physical line a record starts on, and the raw text of a record that does not
fit the columns (`_rescued_data`), across quoted multi-line records.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterator, Optional, Sequence

from .formats import SourceFormat, detect_format

# The parser's own byte limit (ParseLimits.max_record_bytes) bounds a record before csv sees
# it grow; csv's field limit (128 KiB by default, and process-wide) must not refuse first.
csv.field_size_limit(2**31 - 1)

CHUNK_BYTES = 1 << 20

# File-level rejection reasons (the file is refused whole; its evidence goes to quarantine).
EMPTY_FILE = "empty_file"
NOT_UTF8 = "not_utf8"
NUL_BYTES = "nul_bytes"
UNKNOWN_HEADER = "unknown_header"
LINE_TOO_LONG = "line_too_long"  # a physical line or a quoted record over max_record_bytes
UNTERMINATED_QUOTE = "unterminated_quote"  # the last record opens a quote that never closes
PARSE_ERROR = "parse_error"  # the csv module refused a record
UNREADABLE = "unreadable"  # could not be opened or read (permission, a directory, gone, an odd name)
CHANGED_DURING_READ = "changed_during_read"  # its size moved between the listing and the read


@dataclass(frozen=True)
class ParseLimits:
    """What one file may cost a parser: it never holds more than `max_record_bytes` of one
    line or record, and a refused file keeps at most `evidence_bytes` of its text."""

    max_record_bytes: int = 16 * 2**20
    evidence_bytes: int = 64 * 2**10


DEFAULT_LIMITS = ParseLimits()


@dataclass
class ParsedRecord:
    values: dict[str, Optional[str]]
    line: Optional[int]
    source_format: Optional[str]
    rescued: Optional[str] = None
    reject_reason: Optional[str] = None


class _Refused(Exception):
    """The file is refused part-way through: `reason` for the ledger, evidence for quarantine."""

    def __init__(self, reason: str, line: Optional[int], evidence: Optional[str]):
        super().__init__(reason)
        self.reason, self.line, self.evidence = reason, line, evidence


# A fault of the store or the network, not of the file (azure-core's, aiohttp's and requests'
# classes by name: the store's client imports them, this module does not): it fails the run, which
# is retried (the landing sensor's backoff, then `failed`), where a refusal would be final for a
# good file. The SDK has already retried it by then.
_TRANSIENT_CLASSES = frozenset({
    "ServiceRequestError", "ServiceResponseError", "ClientConnectionError", "ClientPayloadError",
    "ServerTimeoutError", "ProtocolError", "ReadTimeoutError", "ChunkedEncodingError", "IncompleteRead",
})


def transient(error: BaseException) -> bool:
    """`error`, or what it was raised from, is a store's or network's passing fault: a reset or
    timed-out connection, a broken response, throttling (429) or a server error (5xx)."""
    while error is not None:
        if isinstance(error, (ConnectionError, TimeoutError)) or any(
            c.__name__ in _TRANSIENT_CLASSES for c in type(error).__mro__
        ):
            return True
        status = getattr(error, "status_code", None)
        if isinstance(status, int) and (status in (408, 429) or 500 <= status < 600):
            return True
        error = error.__cause__
    return False


def stream_sha256(open_binary: Callable[[], IO[bytes]], chunk_bytes: int = 4 << 20) -> tuple[str, int]:
    """(sha256 hex digest, size) of the bytes `open_binary()` streams, `chunk_bytes` at a time: a
    file is never held whole (the ledger's hashes, the archive's and a pull copy's checks)."""
    import hashlib

    digest, size = hashlib.sha256(), 0
    with open_binary() as stream:
        while chunk := stream.read(chunk_bytes):
            size += len(chunk)
            digest.update(chunk)
    return digest.hexdigest(), size


def _one_line(message: str, limit: int = 300) -> str:
    return " ".join(str(message).split())[:limit]


def scan_file(
    open_binary: Callable[[], IO[bytes]], expected_size: Optional[int] = None, digest: Optional[Any] = None
) -> Optional[str]:
    """First pass: a file-level defect that makes the whole file unusable, or None.

    Decoding incrementally keeps memory at one chunk; a defect found half-way
    through must reject the file before any of its rows are emitted. With
    `expected_size` (the listing's), a file that grew or shrank since is refused:
    its producer was still writing, or replaced it. A `digest` (a hashlib object)
    is fed every byte of the file, a defect found early or not, so a caller that
    needs both the hash and the scan reads the file once.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    seen_text = False
    size = 0
    defect = None
    with open_binary() as stream:
        while chunk := stream.read(CHUNK_BYTES):
            size += len(chunk)
            if digest is not None:
                digest.update(chunk)
            if defect is None and b"\x00" in chunk:
                defect = NUL_BYTES
            elif defect is None:
                try:
                    text = decoder.decode(chunk)
                    seen_text = seen_text or bool(text.lstrip("\ufeff").strip())
                except UnicodeDecodeError:
                    defect = NOT_UTF8
            if defect is not None and digest is None:
                break
        if defect is not None:
            return defect
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return NOT_UTF8
    if expected_size is not None and size != expected_size:
        return f"{CHANGED_DURING_READ}: listed with {expected_size} bytes, read {size}"
    return None if seen_text else EMPTY_FILE


def open_text(stream: IO[bytes], errors: str = "strict") -> io.TextIOWrapper:
    # utf-8-sig drops a leading BOM; newline="" hands CRLF to csv untouched.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors=errors, newline="")


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


def _rejected_lines(
    open_binary: Callable[[], IO[bytes]], reason: str, limits: ParseLimits = DEFAULT_LIMITS
) -> Iterator[ParsedRecord]:
    """The physical lines of a refused file, raw, as evidence: the whole of a small file,
    and at most `limits.evidence_bytes` of a large one (the file itself stays in the zone)."""
    emitted = False
    budget = limits.evidence_bytes
    with open_binary() as stream:
        text = open_text(stream, errors="backslashreplace")
        number = 0
        while budget > 0 and (line := text.readline(budget)):
            number += 1
            # A line cut by the budget ends the evidence; a whole line continues it.
            budget -= _utf8_size(line)
            emitted = True
            yield ParsedRecord({}, number, None, rescued=line.rstrip("\r\n"), reject_reason=reason)
    if not emitted:
        yield ParsedRecord({}, None, None, rescued="", reject_reason=reason)


def parse_records(
    open_binary: Callable[[], IO[bytes]],
    formats: Sequence[SourceFormat],
    limits: ParseLimits = DEFAULT_LIMITS,
    expected_size: Optional[int] = None,
) -> Iterator[ParsedRecord]:
    """All records of one file: data rows, or rejected rows that carry a reason.

    Never raises for a defect of the file: a file refused part-way through (a line
    over the limit, an unterminated quote, a read error) ends with one rejected
    record, and its caller drops the file's earlier rows (a file with any rejected
    record is refused whole: `transforms.bronze.split_parsed`).
    """
    try:
        defect = scan_file(open_binary, expected_size)
        if defect is not None:
            yield from _rejected_lines(open_binary, defect, limits)
            return
        yield from _records(open_binary, formats, limits)
    except _Refused as refused:
        yield ParsedRecord({}, refused.line, None, rescued=refused.evidence, reject_reason=refused.reason)
    except csv.Error as error:
        yield ParsedRecord({}, None, None, reject_reason=f"{PARSE_ERROR}: {_one_line(error)}")
    except Exception as error:  # noqa: BLE001 - any failure of one file is that file's refusal...
        if transient(error):  # ...but the store's: the run fails, and is retried
            raise
        yield ParsedRecord({}, None, None, reject_reason=f"{UNREADABLE}: {type(error).__name__}: {_one_line(error)}")


def _records(
    open_binary: Callable[[], IO[bytes]], formats: Sequence[SourceFormat], limits: ParseLimits
) -> Iterator[ParsedRecord]:
    limit = limits.max_record_bytes
    with open_binary() as stream:
        text = open_text(stream)
        consumed: list[str] = []
        state = {"bytes": 0, "line": 0, "eof": False}

        def too_long() -> _Refused:
            evidence = "".join(consumed)[: limits.evidence_bytes]
            start = state["line"] - len(consumed) + 1
            return _Refused(f"{LINE_TOO_LONG}: line {start}: a record over {limit} bytes", start, evidence)

        def physical_lines() -> Iterator[str]:
            # readline(limit + 1): a line is never read whole past the limit, so a
            # 2 GB line costs the parser limit + 1 characters, not 2 GB.
            while line := text.readline(limit + 1):
                state["line"] += 1
                consumed.append(line)
                state["bytes"] += _utf8_size(line)
                if state["bytes"] > limit:
                    raise too_long()
                yield line
            state["eof"] = True

        # strict: a quote closed before other text than a delimiter is an error. Lenient mode
        # reads on to the next quote, so one stray quote joins two records into one row of the
        # right width, under the second record's show_id (nothing would tell).
        reader = csv.reader(physical_lines(), strict=True)
        header = next(reader, None)
        header_text = "".join(consumed)
        fmt = detect_format(header_text, formats) if header is not None else None
        if fmt is None:
            reason = f"{UNKNOWN_HEADER}: {header_text.strip()[:200]!r}"
            yield from _rejected_lines(open_binary, reason, limits)
            return
        consumed.clear()
        state["bytes"] = 0
        width = len(fmt.columns)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                evidence = "".join(consumed)[: limits.evidence_bytes]
                if state["eof"] and "unexpected end of data" in str(error):
                    reason = f"{UNTERMINATED_QUOTE}: line {start}: a quoted field opened there never closes"
                else:
                    reason = f"{PARSE_ERROR}: line {start}: {_one_line(error)}"
                raise _Refused(reason, start, evidence) from None
            raw = "".join(consumed)
            consumed.clear()
            state["bytes"] = 0
            if not fields:  # a blank line is not a record
                continue
            # Missing trailing fields are null; extra fields survive in _rescued_data.
            values = {c: (fields[i] if i < len(fields) else None) for i, c in enumerate(fmt.columns)}
            rescued = None
            if len(fields) != width:
                rescued = raw.rstrip("\r\n")
            yield ParsedRecord(values, start, fmt.name, rescued=rescued)
