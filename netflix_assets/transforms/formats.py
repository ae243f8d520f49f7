"""Source file formats of the data contract, detected from a file's header."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class SourceFormat:
    name: str
    columns: tuple[str, ...]


# Titles files (landing zone): both formats the contract accepts.
TUTORIAL = SourceFormat(
    "tutorial",
    ("duration_minutes", "duration_seasons", "type", "title", "date_added",
     "release_year", "rating", "description", "show_id"),
)
KAGGLE = SourceFormat(
    "kaggle",
    ("show_id", "type", "title", "director", "cast", "country", "date_added",
     "release_year", "rating", "duration", "listed_in", "description"),
)
TITLE_FORMATS: tuple[SourceFormat, ...] = (TUTORIAL, KAGGLE)

# Lookup files pulled over HTTP (the ADF ForEach copy), one format each.
CAST = SourceFormat("cast", ("cast", "show_id"))
CATEGORY = SourceFormat("category", ("listed_in", "show_id"))
COUNTRIES = SourceFormat("countries", ("country", "show_id"))
DIRECTORS = SourceFormat("directors", ("director", "show_id"))


@dataclass(frozen=True)
class Lookup:
    """A lookup dataset: pulled as `<table>.csv` in `format` into raw/ and bronze/, cleaned into
    silver/ and gold/ tables of (show_id, `value_column`), fed also by the Kaggle titles' column
    `kaggle_list_column` (a comma-separated list)."""

    table: str
    format: SourceFormat
    value_column: str
    kaggle_list_column: str

    @property
    def source_column(self) -> str:
        """The value's column in the pulled file (bronze keeps it as read)."""
        return self.format.columns[0]

    @property
    def file_name(self) -> str:
        return f"{self.table}.csv"


# The one list of lookups: bronze's pulls and tables, silver, gold and the tests derive theirs from it.
LOOKUPS: dict[str, Lookup] = {
    lookup.table: lookup
    for lookup in (
        Lookup("netflix_cast", CAST, "cast_name", "cast"),
        Lookup("netflix_directors", DIRECTORS, "director_name", "director"),
        Lookup("netflix_countries", COUNTRIES, "country", "country"),
        Lookup("netflix_category", CATEGORY, "category", "listed_in"),
    )
}


def union_columns(formats: Sequence[SourceFormat]) -> tuple[str, ...]:
    """The bronze source columns for a table fed by several formats, in first-seen order."""
    seen: dict[str, None] = {}
    for fmt in formats:
        for column in fmt.columns:
            seen.setdefault(column, None)
    return tuple(seen)


# The bronze titles table's source columns: both formats', in first-seen order.
TITLE_COLUMNS = union_columns(TITLE_FORMATS)


def normalize_header(header_line: str) -> tuple[str, ...]:
    """Column names of a header line; tolerates a BOM, CRLF, quoting and stray blanks."""
    line = header_line.lstrip("\ufeff").rstrip("\r\n")
    fields = next(csv.reader([line]), [])
    return tuple(field.strip().lower() for field in fields)


def detect_format(header_line: str, formats: Sequence[SourceFormat]) -> Optional[SourceFormat]:
    header = normalize_header(header_line)
    for fmt in formats:
        if header == fmt.columns:
            return fmt
    return None
