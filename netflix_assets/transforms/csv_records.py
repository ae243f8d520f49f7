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
from typing import IO, Callable, Iterator, Optional, Sequence

from .formats import SourceFormat, detect_format

# A quoted description can be long; csv's 128 KiB default is not a real limit.
csv.field_size_limit(16 * 1024 * 1024)

CHUNK_BYTES = 1 << 20

# File-level rejection reasons (every line of the file goes to quarantine).
EMPTY_FILE = "empty_file"
NOT_UTF8 = "not_utf8"
NUL_BYTES = "nul_bytes"
UNKNOWN_HEADER = "unknown_header"


@dataclass
class ParsedRecord:
    values: dict[str, Optional[str]]
    line: Optional[int]
    source_format: Optional[str]
    rescued: Optional[str] = None
    reject_reason: Optional[str] = None


def scan_file(open_binary: Callable[[], IO[bytes]]) -> Optional[str]:
    """First pass: a file-level defect that makes the whole file unusable, or None.

    Decoding incrementally keeps memory at one chunk; a defect found half-way
    through must reject the file before any of its rows are emitted.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    seen_text = False
    with open_binary() as stream:
        while chunk := stream.read(CHUNK_BYTES):
            if b"\x00" in chunk:
                return NUL_BYTES
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                return NOT_UTF8
            seen_text = seen_text or bool(text.lstrip("\ufeff").strip())
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return NOT_UTF8
    return None if seen_text else EMPTY_FILE


def open_text(stream: IO[bytes], errors: str = "strict") -> io.TextIOWrapper:
    # utf-8-sig drops a leading BOM; newline="" hands CRLF to csv untouched.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", errors=errors, newline="")


def _rejected_lines(open_binary: Callable[[], IO[bytes]], reason: str) -> Iterator[ParsedRecord]:
    """Every physical line of a refused file, raw, so that nothing is lost."""
    emitted = False
    with open_binary() as stream:
        for number, line in enumerate(open_text(stream, errors="backslashreplace"), start=1):
            emitted = True
            yield ParsedRecord({}, number, None, rescued=line.rstrip("\r\n"), reject_reason=reason)
    if not emitted:
        yield ParsedRecord({}, None, None, rescued="", reject_reason=reason)


def parse_records(
    open_binary: Callable[[], IO[bytes]], formats: Sequence[SourceFormat]
) -> Iterator[ParsedRecord]:
    """All records of one file: data rows, or rejected rows that carry a reason."""
    defect = scan_file(open_binary)
    if defect is not None:
        yield from _rejected_lines(open_binary, defect)
        return

    with open_binary() as stream:
        text = open_text(stream)
        consumed: list[str] = []

        def physical_lines() -> Iterator[str]:
            for line in text:
                consumed.append(line)
                yield line

        reader = csv.reader(physical_lines())
        header = next(reader, None)
        header_text = "".join(consumed)
        fmt = detect_format(header_text, formats) if header is not None else None
        if fmt is None:
            reason = f"{UNKNOWN_HEADER}: {header_text.strip()[:200]!r}"
            yield from _rejected_lines(open_binary, reason)
            return
        consumed.clear()
        width = len(fmt.columns)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            raw = "".join(consumed)
            consumed.clear()
            if not fields:  # a blank line is not a record
                continue
            # Missing trailing fields are null; extra fields survive in _rescued_data.
            values = {c: (fields[i] if i < len(fields) else None) for i, c in enumerate(fmt.columns)}
            rescued = None
            if len(fields) != width:
                rescued = raw.rstrip("\r\n")
            yield ParsedRecord(values, start, fmt.name, rescued=rescued)
