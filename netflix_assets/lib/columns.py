"""One line per column of every table the pipeline writes: the column descriptions BI users see.

One registry, three readers: the IO manager writes them into each Delta table's schema as column
comments (what `DESCRIBE` and Delta readers show; HiveServer2's GetColumns lists the columns, its remarks are not tested), `dagster/column_schema`
carries them to the UI's Columns table, and `docs/data-contract.md`'s "Column descriptions" section
is generated from here (`python -m netflix_assets.lib.columns`; a test keeps it equal).

A column means the same in every table unless the table overrides it (`TABLES`). No Dagster here.
"""

from __future__ import annotations

import sys
from typing import Mapping, Optional, Sequence

COMMON: dict[str, str] = {
    # identity and lineage
    "show_id": "The title's id in its source export (Netflix's numeric id in the tutorial export, s1..s8807 in Kaggle's).",
    "ingest_date": "The daily partition (UTC date): the day the row's file landed or its lookup was pulled; in gold, the snapshot's day.",
    "_source_file": "URI of the file the row was read from.",
    "_source_line": "1-based physical line of the record in its source file.",
    "_source_format": "The source export the file's header was recognised as (tutorial or kaggle).",
    "_ingested_at": "UTC timestamp of the run that read the row.",
    "_rescued_data": "The raw text of a record that did not fit the expected columns, else null.",
    "_reason": "Why the row was refused (a status code, then the detail).",
    "_version_date": "The silver partition the row's current version comes from (the latest one <= ingest_date holding this show_id).",
    "_first_ingested": "The ingest order (_ingested_at, _source_file, _source_line) of the show_id's first record in silver up to ingest_date: of a conformed title's members, the first ingested gives the title its title_key.",
    # titles
    "type": "'Movie' or 'TV Show'.",
    "title": "The title as published (trimmed).",
    "short_title": "The title up to its first ':' (trimmed).",
    "description": "Netflix's one-paragraph synopsis.",
    "date_added": "The day Netflix added the title to its catalogue (not its release).",
    "release_year": "The year the title was first released.",
    "rating": "The content rating, whole (TV-MA, PG-13, ...).",
    "rating_group": "The rating up to its first '-' (TV-MA -> TV, PG-13 -> PG).",
    "duration_minutes": "A movie's running time in minutes (0 when none, as the original pipeline did).",
    "duration_seasons": "A TV show's number of seasons (1 when none, as the original pipeline did).",
    "type_flag": "1 for a Movie, 2 for a TV Show, 0 otherwise.",
    "duration_ranking": "Dense rank of duration_minutes over the snapshot, longest first.",
    "newflag": "Always 1: the original pipeline's marker of a row served by gold.",
    # lookups
    "cast_name": "One cast member of the title.",
    "director_name": "One director of the title.",
    "country": "One production country of the title.",
    "category": "One Netflix genre (listed_in) of the title.",
    # raw text of a Kaggle titles record (bronze, quarantine)
    "director": "Kaggle: the title's directors, comma-separated, as read.",
    "cast": "Kaggle: the title's cast, comma-separated, as read.",
    "duration": "Kaggle: '<N> min' for a movie or '<N> Season(s)' for a show, as read.",
    "listed_in": "Kaggle: the title's genres, comma-separated, as read.",
    # title identity (transforms/identity.py)
    "title_key": "The conformed title: the same for the same real title across sources (xxhash64 of its first-ingested show_id).",
    "source_format": "The source export the show_id comes from (tutorial or kaggle).",
    "is_representative": "True for the show_id whose attributes describe its title_key (the last-ingested source).",
    "match_rule": "How the show_id was matched to one of another source: description, people_and_year, or no_match.",
    "match_score": "The match's evidence: the descriptions' word Jaccard (description) or the shared people over the smaller cast (people_and_year).",
    "matched_show_id": "The other source's show_id of the same title, else null.",
    "candidate_show_id": "The other source's show_id of the candidate pair.",
    "candidate_source_format": "The source export of candidate_show_id.",
    "candidate_release_year": "The release_year of candidate_show_id.",
    "description_similarity": "Word Jaccard of the two descriptions (0-1; 0.8 or more merges by the description rule).",
    "shared_people": "Cast members and directors the two titles have in common.",
    # dimensions and bridges
    "person_key": "Surrogate key of a person (xxhash64 of the name: stable across runs).",
    "name": "A person's name as credited (a cast member or a director).",
    "country_key": "Surrogate key of a country (xxhash64 of the name: stable across runs).",
    "genre_key": "Surrogate key of a genre (xxhash64 of the name: stable across runs).",
    "genre": "A Netflix genre (listed_in).",
    "role": "'cast' or 'director'.",
    "date": "A calendar day.",
    "year": "The day's year.",
    "quarter": "The day's quarter (1-4).",
    "month": "The day's month (1-12).",
    "month_name": "The month's English name.",
    "year_month": "The day's month as yyyy-MM.",
    "day": "The day of the month (1-31).",
    "day_name": "The weekday's English name.",
    "is_weekend": "True on Saturday and Sunday.",
    # fact and KPIs
    "years_to_netflix": "year(date_added) - release_year: how long the title took to reach Netflix.",
    "titles": "Number of distinct titles in the group.",
    "movies": "Number of distinct movies in the group.",
    "tv_shows": "Number of distinct TV shows in the group.",
    "rank": "Rank by titles, descending (1 = most; ties share a rank).",
    "share": "The group's titles as a fraction of its type's titles (0-1).",
    "year_added": "The year Netflix added the titles (year of date_added).",
    "release_decade": "The release year's decade (e.g. 1990).",
    "avg_minutes": "Mean running time of the decade's movies, in minutes.",
    "median_minutes": "Median running time of the decade's movies, in minutes.",
    "p90_minutes": "90th percentile of the decade's movies' running times, in minutes.",
}

# Where a column means something more precise in one table: "<layer>/<table>" -> {column: text}.
TABLES: dict[str, dict[str, str]] = {
    "gold/kpi_titles_added_by_month": {"month": "The first day of the month Netflix added the titles."},
    "gold/kpi_top_people": {"name": "The person's name as credited.", "rank": "Rank by titles within the role, descending (1 = most; ties share a rank)."},
    "gold/kpi_rating_mix": {"type": "'Movie' or 'TV Show': the share's denominator."},
    "gold/dim_country": {"country": "A production country's name."},
    "gold/bridge_title_person": {"role": "'cast' or 'director': how the person is credited on the title."},
    "gold/title_match_review": {
        "reason": "several_candidates (a rule holds but a rival pair contests it) or title_and_year_only (same type, title and year, no other evidence, neither title merged).",
        "title": "The title as published by show_id's source.",
        "type": "'Movie' or 'TV Show' (both sides).",
    },
    "gold/dim_title": {"show_id": "The representative show_id of the title_key (its last-ingested source's id)."},
    "gold/fact_title_added": {"show_id": "The representative show_id of the title_key (its last-ingested source's id)."},
    "gold/dim_title_history": {
        "show_id": "The representative show_id of the title_key during the version.",
        "countries": "The title's production countries during the version, sorted (empty when none).",
        "genres": "The title's genres (listed_in) during the version, sorted (empty when none).",
        "valid_from": "The first snapshot day (ingest_date) of the version.",
        "valid_to": "The first snapshot day the version no longer held (a change, or the title left); null while current.",
        "is_current": "True for the version dim_title shows on the snapshot's day (valid_to is null).",
        "ingest_date": "The snapshot's day: the history as of that day.",
    },
}


def describe(table: str, columns: Sequence[str]) -> dict[str, str]:
    """{column: description} for the columns of `table` ("<layer>/<table>") that have one."""
    own = TABLES.get(table, {})
    return {c: own.get(c) or COMMON[c] for c in columns if c in own or c in COMMON}


def undocumented(table: str, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c not in describe(table, columns)]


def contract_section(tables: Mapping[str, Sequence[str]]) -> str:
    """The data contract's "Column descriptions" section for `tables` ({"layer/table": columns})."""
    lines = ["## Column descriptions", "",
             "Generated from `netflix_assets/lib/columns.py` (`python -m netflix_assets.lib.columns`): the same text is",
             "each Delta table's column comment (what `DESCRIBE` shows over the SQL endpoint) and the UI's Columns table.", ""]
    for table, columns in sorted(tables.items()):
        docs = describe(table, columns)
        lines += [f"### {table}", "", "| column | description |", "|---|---|"]
        lines += [f"| {c} | {docs.get(c, '')} |" for c in columns]
        lines.append("")
    return "\n".join(lines)


def _lake_tables(root: str) -> dict[str, list[str]]:
    """{"layer/table": columns} of the silver, gold and quarantine tables under `root` (delta-rs)."""
    import os

    from deltalake import DeltaTable

    found = {}
    for layer in ("silver", "gold", "quarantine"):
        folder = os.path.join(root, layer)
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
            if os.path.isdir(os.path.join(folder, name, "_delta_log")):
                found[f"{layer}/{name}"] = [f.name for f in DeltaTable(os.path.join(folder, name)).schema().fields]
    return found


def main(argv: Optional[list[str]] = None) -> int:
    """Print the contract's section for the tables of a built lake (default: the project's)."""
    from ..resources.lake import DEFAULT_LAKE_URI, normalize_root

    argv = sys.argv[1:] if argv is None else argv
    print(contract_section(_lake_tables(normalize_root(argv[0] if argv else DEFAULT_LAKE_URI))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
