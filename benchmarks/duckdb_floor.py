"""The single-node floor: the bronze -> silver -> gold parity work in DuckDB, beside the Spark figures.

    python -m benchmarks.duckdb_floor --titles FILE [FILE ...] --lookups DIR --out DIR

What the original notebooks compute for one day, in one in-process DuckDB (2 threads here):
bronze titles (both header formats, every field read as text, an explicit column list, malformed
records kept aside by DuckDB's reject tables), silver titles (refusal reasons, latest record per
show_id, typed columns, the Kaggle duration split and the rating-holds-duration repair, date
parsing in both formats), the four silver lookups (pulled files + the Kaggle list columns,
trimmed, blank elements refused, duplicates removed), gold titles (dense duration ranking,
newflag) and the gold lookups. Tables are written as Parquet: DuckDB writes no Delta without an
extension download, which this offline machine cannot do. No ledger, no checks, no lineage
columns beyond what dedup needs: it is the floor, not a replacement. The row counts are printed
so `benchmarks.bench` can set them beside the pipeline's.

Prints one JSON line: {"seconds": ..., "rows": {table: count}}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

from netflix_assets.transforms.formats import KAGGLE, TITLE_FORMATS, TUTORIAL, detect_format
from netflix_assets.transforms.formats import LOOKUPS
from netflix_assets.transforms.silver import TYPES

LOOKUP_FILES = {"netflix_cast": "netflix_cast.csv", "netflix_directors": "netflix_directors.csv",
                "netflix_countries": "netflix_countries.csv", "netflix_category": "netflix_category.csv"}


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def _read_csv(files: Sequence[str], columns: Sequence[str], fmt: str) -> str:
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
    return (
        f"SELECT *, '{fmt}' AS _source_format, row_number() OVER () AS _ordinal "
        f"FROM read_csv({_sql_list(files)}, header = true, columns = {spec}, quote = '\"', escape = '\"', "
        f"filename = '_source_file', store_rejects = true, rejects_table = 'rejects_{fmt}', "
        f"rejects_scan = 'rejects_scan_{fmt}')"
    )


def run(titles: Sequence[str], lookups: Path, out: Path) -> dict:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    # Spark's trim strips spaces only; DuckDB's default trim strips every whitespace (a no-break space too).
    con.execute("CREATE MACRO strim(s) AS trim(s, ' ')")
    by_format: dict[str, list[str]] = {}
    for path in titles:
        with open(path, encoding="utf-8-sig", newline="") as f:
            fmt = detect_format(f.readline(), TITLE_FORMATS)
        if fmt is not None:
            by_format.setdefault(fmt.name, []).append(path)
    parts = []
    for fmt in (TUTORIAL, KAGGLE):
        if fmt.name in by_format:
            parts.append(_read_csv(by_format[fmt.name], fmt.columns, fmt.name))
    con.execute("CREATE TABLE bronze_titles AS " + " UNION ALL BY NAME ".join(parts))
    for column in dict.fromkeys(TUTORIAL.columns + KAGGLE.columns):  # one format alone lacks the other's
        con.execute(f'ALTER TABLE bronze_titles ADD COLUMN IF NOT EXISTS "{column}" VARCHAR')
    types = _sql_list(list(TYPES))
    con.execute(f"""
        CREATE TABLE classified AS
        SELECT *,
          CASE WHEN nullif(strim(show_id), '') IS NULL THEN 'missing_show_id'
               WHEN strim(type) IS NULL OR NOT list_contains({types}, strim(type)) THEN 'bad_type' END AS _reason
        FROM bronze_titles""")
    con.execute("""
        CREATE TABLE silver_titles AS
        WITH accepted AS (
          SELECT *, row_number() OVER (PARTITION BY strim(show_id) ORDER BY _source_file DESC, _ordinal DESC) AS _rank
          FROM classified WHERE _reason IS NULL
        ), typed AS (
          SELECT *, nullif(strim(rating), '') AS _rating,
                 _source_format = 'kaggle' AND regexp_matches(coalesce(nullif(strim(rating), ''), ''), '^[0-9]+ min$') AS _rating_is_duration
          FROM accepted WHERE _rank = 1
        ), durations AS (
          SELECT *, coalesce(nullif(strim(duration), ''), CASE WHEN _rating_is_duration THEN _rating END) AS _duration
          FROM typed
        )
        SELECT strim(show_id) AS show_id, strim(type) AS type, strim(title) AS title,
               strim(split_part(strim(title), ':', 1)) AS short_title, strim(description) AS description,
               coalesce(try_strptime(strim(date_added), '%m/%d/%Y'), try_strptime(strim(date_added), '%B %d, %Y'))::DATE AS date_added,
               try_cast(strim(release_year) AS INTEGER) AS release_year,
               CASE WHEN _rating_is_duration THEN NULL ELSE _rating END AS rating,
               split_part(CASE WHEN _rating_is_duration THEN NULL ELSE _rating END, '-', 1) AS rating_group,
               coalesce(CASE WHEN _source_format = 'kaggle'
                             THEN try_cast(nullif(regexp_extract(_duration, '^([0-9]+) min$', 1), '') AS INTEGER)
                             ELSE try_cast(strim(duration_minutes) AS INTEGER) END, 0) AS duration_minutes,
               coalesce(CASE WHEN _source_format = 'kaggle'
                             THEN try_cast(nullif(regexp_extract(_duration, '^([0-9]+) Seasons?$', 1), '') AS INTEGER)
                             ELSE try_cast(strim(duration_seasons) AS INTEGER) END, 1) AS duration_seasons,
               CASE strim(type) WHEN 'Movie' THEN 1 WHEN 'TV Show' THEN 2 ELSE 0 END AS type_flag,
               _source_format, _source_file
        FROM durations""")
    con.execute("""
        CREATE TABLE gold_titles AS
        SELECT *, dense_rank() OVER (ORDER BY duration_minutes DESC) AS duration_ranking, 1 AS newflag
        FROM silver_titles WHERE show_id IS NOT NULL""")
    tables = ["silver_titles", "gold_titles"]
    kaggle_loaded = "kaggle" in by_format
    for name, lookup in LOOKUPS.items():
        path = lookups / LOOKUP_FILES[name]
        from_file = (f"SELECT show_id, \"{lookup.source_column}\" AS value FROM read_csv('{path}', header = true, "
                     f"columns = {{'{lookup.source_column}': 'VARCHAR', 'show_id': 'VARCHAR'}}, quote = '\"', escape = '\"')")
        parts = [from_file]
        if kaggle_loaded:
            parts.append(f"SELECT show_id, unnest(string_split(\"{lookup.kaggle_list_column}\", ',')) AS value "
                         f"FROM bronze_titles WHERE _source_format = 'kaggle' "
                         f"AND nullif(strim(\"{lookup.kaggle_list_column}\"), '') IS NOT NULL")
        con.execute(f"""
            CREATE TABLE silver_{name} AS
            SELECT DISTINCT strim(show_id) AS show_id, strim(value) AS {lookup.value_column}
            FROM ({' UNION ALL '.join(parts)})
            WHERE nullif(strim(show_id), '') IS NOT NULL AND nullif(strim(value), '') IS NOT NULL""")
        con.execute(f"CREATE TABLE gold_{name} AS SELECT * FROM silver_{name} WHERE show_id IS NOT NULL")
        tables += [f"silver_{name}", f"gold_{name}"]
    rows = {}
    for table in tables:
        con.execute(f"COPY {table} TO '{out / (table + '.parquet')}' (FORMAT parquet)")
        rows[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    rows["bronze_titles"] = con.execute("SELECT count(*) FROM bronze_titles").fetchone()[0]
    rows["rejected_records"] = sum(
        con.execute(f"SELECT count(*) FROM rejects_{fmt}").fetchone()[0] for fmt in by_format
    )
    seconds = time.perf_counter() - started
    con.close()
    return {"seconds": seconds, "rows": rows}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", nargs="+", required=True)
    parser.add_argument("--lookups", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.titles, args.lookups, args.out)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
