"""Parsing landed files into bronze records: formats, line numbers, rescue, file-level defects."""

import io

import pytest

from netflix_assets.transforms import csv_records as cr
from netflix_assets.transforms.formats import KAGGLE, TITLE_FORMATS, TUTORIAL, detect_format

from netflix_assets_tests.conftest import KAGGLE_TITLES, TUTORIAL_DIR


def _parse(data: bytes, formats=TITLE_FORMATS):
    return list(cr.parse_records(lambda: io.BytesIO(data), formats))


@pytest.mark.parametrize(
    "header",
    [
        "\ufeffduration_minutes,duration_seasons,type,title,date_added,release_year,rating,description,show_id\r\n",
        "duration_minutes,duration_seasons,type,title,date_added,release_year,rating,description,show_id\n",
        " Duration_Minutes ,duration_seasons,type,title,date_added,release_year,rating,description,show_id\r\n",
    ],
)
def test_tutorial_header_detected_with_bom_crlf_and_blanks(header):
    assert detect_format(header, TITLE_FORMATS) is TUTORIAL


def test_kaggle_header_detected_and_unknown_header_is_none():
    assert detect_format(",".join(KAGGLE.columns) + "\r\n", TITLE_FORMATS) is KAGGLE
    assert detect_format("id,name\n", TITLE_FORMATS) is None


def test_physical_line_numbers_and_quoted_newlines():
    data = (
        "show_id,type,title,director,cast,country,date_added,release_year,rating,duration,listed_in,description\n"
        's1,Movie,A,,,,"September 25, 2021",2020,PG,90 min,Dramas,"two\nlines"\n'
        "s2,TV Show,B,,,,,2019,TV-MA,2 Seasons,Docuseries,plain\n"
    ).encode()
    records = _parse(data)
    assert [(r.values["show_id"], r.line) for r in records] == [("s1", 2), ("s2", 4)]
    assert records[0].values["description"] == "two\nlines"
    assert all(r.source_format == "kaggle" and r.rescued is None for r in records)


def test_bom_and_crlf_are_not_part_of_values():
    data = ("\ufeff" + ",".join(TUTORIAL.columns) + "\r\n90,,Movie,T,9/9/2019,2019,TV-PG,d,81145628\r\n").encode()
    (record,) = _parse(data)
    assert record.values["duration_minutes"] == "90" and record.values["show_id"] == "81145628"


def test_rows_with_too_many_or_too_few_fields_keep_their_raw_text():
    data = (",".join(TUTORIAL.columns) + "\n90,,Movie,T,9/9/2019,2019,TV-PG,d,1,EXTRA\n90,,Movie\n").encode()
    too_many, too_few = _parse(data)
    assert too_many.rescued == "90,,Movie,T,9/9/2019,2019,TV-PG,d,1,EXTRA" and too_many.line == 2
    assert too_few.rescued == "90,,Movie" and too_few.values["show_id"] is None


def test_blank_lines_are_not_records():
    data = (",".join(TUTORIAL.columns) + "\n\n90,,Movie,T,9/9/2019,2019,TV-PG,d,1\n").encode()
    (record,) = _parse(data)
    assert record.line == 3


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", cr.EMPTY_FILE),
        (b"\xef\xbb\xbf\r\n  \r\n", cr.EMPTY_FILE),
        (b"show_id,type\nsome \xff\xfe bytes\n", cr.NOT_UTF8),
        (b"show_id,type\nab\x00c\n", cr.NUL_BYTES),
    ],
)
def test_file_level_defects_reject_every_line(data, reason):
    records = _parse(data)
    assert records and all(r.reject_reason == reason for r in records)
    assert all(r.values == {} for r in records)


def test_a_stray_quote_refuses_the_file_rather_than_joining_two_records():
    # Lenient csv read on to the next quote: one row of the right width, Alpha's text under
    # Beta's show_id, and both titles gone without a reject.
    data = (
        ",".join(TUTORIAL.columns) + "\r\n"
        "90,,Movie,Alpha,9/9/2019,2019,PG,\"Alpha desc,81000001\r\n"
        '95,,Movie,Beta,9/9/2019,2019,PG,"Beta desc",81000002\r\n'
    ).encode()
    (record,) = _parse(data)
    assert record.reject_reason.startswith(f"{cr.PARSE_ERROR}: line 2: ")
    assert record.line == 2 and "81000002" in record.rescued
    unterminated = (",".join(TUTORIAL.columns) + "\n1,,Movie,A,,2019,PG,a,1\n90,,Movie,\"Open,2020\n").encode()
    *kept, refused = _parse(unterminated)
    assert len(kept) == 1 and refused.reject_reason.startswith(f"{cr.UNTERMINATED_QUOTE}: line 3: ")


def test_unknown_header_quarantines_every_line_with_the_header_in_the_reason():
    records = _parse(b"id,name\n1,a\n2,b\n")
    assert [r.line for r in records] == [1, 2, 3]
    assert all(r.reject_reason.startswith("unknown_header: ") and "id,name" in r.reject_reason for r in records)
    assert [r.rescued for r in records] == ["id,name", "1,a", "2,b"]


def test_real_tutorial_file_broken_records_parse_as_rows_without_show_id():
    records = list(cr.parse_records(lambda: open(TUTORIAL_DIR / "netflix_titles.csv", "rb"), TITLE_FORMATS))
    assert len(records) == 6236
    broken = [r for r in records if not (r.values["show_id"] or "").strip()]
    assert [r.line for r in broken] == [2019, 2020, 4526, 4527]


def test_real_kaggle_file_has_8807_records_over_8810_lines():
    records = list(cr.parse_records(lambda: open(KAGGLE_TITLES, "rb"), TITLE_FORMATS))
    assert len(records) == 8807
    assert all(r.rescued is None for r in records)
    assert records[-1].line + 1 <= 8811
    assert len({r.values["show_id"] for r in records}) == 8807
