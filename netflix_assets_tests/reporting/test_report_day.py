"""Which day `make report` draws (delta-rs tables, no Spark): the latest one every table holds."""

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from netflix_assets.reporting import report


def _table(root, name, days):
    rows = pa.table({"x": list(range(len(days))), "ingest_date": pa.array(days, pa.string())})
    write_deltalake(f"{root}/gold/{name}", rows, partition_by=["ingest_date"])


def test_the_report_stays_on_the_last_day_every_table_holds(tmp_path):
    """A run committing 2026-11-21 has written the fact, not yet the rating mix (or its step failed):
    the dashboard draws 2026-11-20, the last whole day, not empty charts of a half-written one."""
    tables = ["fact_title_added", *(name for name, _ in report.SECTIONS)]
    for name in tables:
        _table(tmp_path, name, ["2026-11-20", "2026-11-21"] if name != "kpi_rating_mix" else ["2026-11-19", "2026-11-20"])
    assert report.report_day(str(tmp_path), tables) == "2026-11-20"
    assert report.read_partition(str(tmp_path), "fact_title_added", "2026-11-20")["x"].tolist() == [0]

    _table(tmp_path, "only_later", ["2026-11-22"])
    with pytest.raises(report.ReportError, match="no partition is in every gold table"):
        report.report_day(str(tmp_path), [*tables, "only_later"])
    with pytest.raises(report.ReportError, match="not found under"):
        report.report_day(str(tmp_path), ["missing"])
