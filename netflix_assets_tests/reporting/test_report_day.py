"""Which day `make report` draws and what a section says without rows (delta-rs tables, no Spark)."""

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from netflix_assets.reporting import report


def _table(root, name, days):
    dates = [dt.date.fromisoformat(d) for d in days]
    rows = pa.table({"x": list(range(len(days))), "ingest_date": pa.array(dates, pa.date32())})
    write_deltalake(f"{root}/gold/{name}", rows, partition_by=["ingest_date"])


def test_the_report_reads_the_facts_latest_day_alone_and_names_a_kpi_without_rows(tmp_path):
    """A run committing 2026-11-21 has written the fact, not yet the rating mix (or its step failed):
    that section says it has no rows for the day, rather than drawing an empty chart without a word."""
    _table(tmp_path, "fact_title_added", ["2026-11-20", "2026-11-21"])
    _table(tmp_path, "kpi_rating_mix", ["2026-11-20"])
    day = report.latest_day(str(tmp_path), "fact_title_added")
    assert day == "2026-11-21"
    assert report.read_partition(str(tmp_path), "fact_title_added", day)["x"].tolist() == [1]
    rows = report.read_partition(str(tmp_path), "kpi_rating_mix", day)
    assert len(rows) == 0 and list(rows.columns) == ["x"]
    assert "no rows for 2026-11-21" in report.section_note("kpi_rating_mix", len(rows), day)
    assert report.section_note("kpi_rating_mix", 4, day) == "gold.kpi_rating_mix: 4 rows"
    with pytest.raises(report.ReportError, match="not found under"):
        report.latest_day(str(tmp_path), "missing")
