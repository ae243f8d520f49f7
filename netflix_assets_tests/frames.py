"""Hand-made bronze DataFrames for transform tests."""

import datetime as dt

from netflix_assets.transforms.formats import TITLE_COLUMNS
from netflix_assets.transforms.bronze import bronze_schema
from netflix_assets.transforms.formats import CAST

D1 = dt.date(2024, 3, 1)
D2 = dt.date(2024, 3, 2)
T0 = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.timezone.utc)


def bronze_titles(spark, rows: list[dict]):
    """rows: source values plus optional lineage overrides."""
    schema = bronze_schema(TITLE_COLUMNS)
    defaults = {
        "_source_file": "file:///landing/a.csv",
        "_source_format": "tutorial",
        "_rescued_data": None,
        "_ingested_at": T0,
        "ingest_date": D1,
    }
    data = []
    for line, row in enumerate(rows, start=2):
        full = {**defaults, "_source_line": line, **row}
        data.append(tuple(full.get(f.name) for f in schema.fields))
    return spark.createDataFrame(data, schema)


def bronze_lookup(spark, pairs: list[tuple], fmt=CAST, ingest_date=D1):
    """(show_id, value) pairs as bronze rows of a lookup file of format `fmt`."""
    schema = bronze_schema(fmt.columns)
    source = f"file:///raw/api/{fmt.name}.csv"
    data = [
        (value, show_id, source, line, fmt.name, None, T0, ingest_date)
        for line, (show_id, value) in enumerate(pairs, start=2)
    ]
    return spark.createDataFrame(data, schema)
