"""An independent implementation of the whole gold layer: the oracle of test_independent_model.py.

Why it exists: most gold figures used to be checked against the project's own transforms, which
cannot catch a bug the check shares with the product. This module computes every gold table
(parity tables, dimensional model, KPIs) for one partition directly from the raw CSV files, with
plain Python and the `csv` module, from the rules of the data contract (`docs/data-contract.md`,
sections Silver, Gold, Checks). It imports NOTHING from `netflix_assets` and must never do so:
an oracle that shares code with the product shares its bugs too.

Where the contract is silent, the rule chosen (and why) is written next to the code as
`AMBIGUITY:`; those choices follow the product's observable behaviour (its transforms were read
only to settle what the contract leaves open) and are listed in the report of the issue.

Output: `gold_layer(...)` -> {table path ("gold/dim_title", ...): Table(columns, rows)}. Tables
whose contract key is a hash (person_key, country_key, genre_key: the contract does not define
the hash) are given by their natural value instead (name, country, genre); the test resolves the
product's keys through its dimensions before comparing.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from fractions import Fraction
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

csv.field_size_limit(2**31 - 1)

# ------------------------------------------------------------------ contract: accepted formats

TUTORIAL_COLUMNS = ("duration_minutes", "duration_seasons", "type", "title", "date_added", "release_year",
                    "rating", "description", "show_id")
KAGGLE_COLUMNS = ("show_id", "type", "title", "director", "cast", "country", "date_added", "release_year",
                  "rating", "duration", "listed_in", "description")
TITLE_FORMATS = {"tutorial": TUTORIAL_COLUMNS, "kaggle": KAGGLE_COLUMNS}

# The four lookups: pulled file name, its value column, silver's value column, Kaggle list column.
LOOKUPS = {
    "netflix_cast": ("netflix_cast.csv", "cast", "cast_name", "cast"),
    "netflix_directors": ("netflix_directors.csv", "director", "director_name", "director"),
    "netflix_countries": ("netflix_countries.csv", "country", "country", "country"),
    "netflix_category": ("netflix_category.csv", "listed_in", "category", "listed_in"),
}

TYPE_FLAGS = {"Movie": 1, "TV Show": 2}
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@dataclass
class Table:
    columns: list[str]
    rows: list[tuple]

    def dicts(self) -> list[dict]:
        return [dict(zip(self.columns, r)) for r in self.rows]


@dataclass(frozen=True)
class Record:
    """One CSV record of a file: its values by column, the physical line it starts on, lineage."""

    values: dict
    line: int
    source_file: str
    source_format: str
    malformed: bool


# ------------------------------------------------------------------ reading raw files


def trim(value: Optional[str]) -> Optional[str]:
    # AMBIGUITY: "trimmed" is read as SQL TRIM: leading/trailing ASCII spaces only. A no-break
    # space (U+00A0, real data: title 'Consequences\xa0') is part of the value.
    return None if value is None else value.strip(" ")


def blank_to_none(value: Optional[str]) -> Optional[str]:
    value = trim(value)
    return value or None


def read_records(path: Path, source_file: str, formats: dict[str, Sequence[str]]) -> Iterator[Record]:
    """Records of a CSV file whose header names one of `formats` (BOM and CRLF tolerated).
    A file with an unknown header yields nothing (the contract quarantines it whole)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        names = tuple(h.strip().lower() for h in (header or []))
        fmt = next((name for name, cols in formats.items() if tuple(cols) == names), None)
        if fmt is None:
            return
        columns = formats[fmt]
        while True:
            start = reader.line_num + 1  # 1-based physical line the record starts on
            try:
                fields = next(reader)
            except StopIteration:
                return
            if not fields:
                continue  # a blank line is not a record
            # A record that does not have exactly the format's columns is malformed (bronze keeps
            # it in _rescued_data; silver sends it to quarantine).
            values = {c: (fields[i] if i < len(fields) else None) for i, c in enumerate(columns)}
            yield Record(values, start, source_file, fmt, len(fields) != len(columns))


# ------------------------------------------------------------------ silver


def parse_date(text: Optional[str]) -> Optional[dt.date]:
    """'M/d/yyyy' or 'MMMM d, yyyy' after trimming; anything else (or an invalid day) -> None."""
    value = trim(text)
    if not value:
        return None
    try:
        if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value):
            return dt.date(int(m[3]), int(m[1]), int(m[2]))
        if m := re.fullmatch(r"([A-Za-z]+) (\d{1,2}), (\d{4})", value):
            months = {name.lower(): i + 1 for i, name in enumerate(MONTHS)}
            if m[1].lower() in months:
                return dt.date(int(m[3]), months[m[1].lower()], int(m[2]))
    except ValueError:
        return None
    return None


def to_int(text: Optional[str]) -> Optional[int]:
    value = blank_to_none(text)
    return int(value) if value is not None and re.fullmatch(r"[+-]?\d+", value) else None


def _latest_first_key(record: Record) -> tuple:
    # Dedup: latest _ingested_at, then latest _source_file, then highest _source_line.
    # AMBIGUITY: every file of one run is ingested at the same instant (one run per test
    # partition), so the order here is (_source_file, _source_line).
    return (record.source_file, record.line)


def silver_titles(records: Iterable[Record]) -> list[dict]:
    """Accepted, typed titles of one partition, deduplicated on show_id (latest record wins)."""
    best: dict[str, Record] = {}
    for rec in records:
        v = rec.values
        show_id = blank_to_none(v.get("show_id"))
        if rec.malformed or show_id is None or trim(v.get("type")) not in TYPE_FLAGS:
            continue  # quarantine: malformed_record, missing_show_id, bad_type
        if show_id not in best or _latest_first_key(rec) > _latest_first_key(best[show_id]):
            best[show_id] = rec
    return [_typed_title(rec) for rec in best.values()]


def _typed_title(rec: Record) -> dict:
    v = rec.values
    # AMBIGUITY: an empty rating is null (not ''), like the duration moved out of it.
    rating = blank_to_none(v.get("rating"))
    if rec.source_format == "kaggle":
        duration = blank_to_none(v.get("duration"))
        if rating is not None and re.fullmatch(r"[0-9]+ min", rating):
            # "A Kaggle row whose rating holds a duration gets rating null and that duration."
            # AMBIGUITY: the duration column wins when both hold one.
            duration, rating = duration or rating, None
        m_min = re.fullmatch(r"([0-9]+) min", duration or "")
        m_season = re.fullmatch(r"([0-9]+) Seasons?", duration or "")
        minutes = int(m_min[1]) if m_min else None
        seasons = int(m_season[1]) if m_season else None
    else:
        minutes, seasons = to_int(v.get("duration_minutes")), to_int(v.get("duration_seasons"))
    type_ = trim(v["type"])
    # AMBIGUITY: title/description keep '' when empty (only rating is nulled when blank).
    title = trim(v.get("title"))
    return {
        "show_id": trim(v["show_id"]),
        "type": type_,
        "title": title,
        "short_title": None if title is None else trim(title.split(":", 1)[0]),
        "description": trim(v.get("description")),
        "date_added": parse_date(v.get("date_added")),
        "release_year": to_int(v.get("release_year")),
        "rating": rating,
        "rating_group": None if rating is None else rating.split("-", 1)[0],
        "duration_minutes": 0 if minutes is None else minutes,
        "duration_seasons": 1 if seasons is None else seasons,
        "type_flag": TYPE_FLAGS.get(type_, 0),
        "_source_format": rec.source_format,
        "_source_file": rec.source_file,
        "_source_line": rec.line,
    }


def silver_lookup(table: str, lookup_records: Iterable[Record], title_records: Iterable[Record]) -> list[dict]:
    """(show_id, value) pairs of one partition: the pulled lookup file's rows plus one per element
    of the Kaggle titles' list column; values trimmed, empty values/show_ids refused, pairs deduped."""
    _, source_column, value_column, list_column = LOOKUPS[table]
    candidates: list[tuple[Optional[str], Optional[str]]] = []
    for rec in lookup_records:
        if not rec.malformed:
            candidates.append((rec.values.get("show_id"), rec.values.get(source_column)))
    for rec in title_records:
        # AMBIGUITY: the list separator is ',' (the contract names no separator); every
        # well-formed Kaggle record feeds the lookups, whatever its type (its show_id is checked
        # like any lookup row's); a blank list means no rows.
        listed = rec.values.get(list_column)
        if rec.source_format == "kaggle" and not rec.malformed and blank_to_none(listed) is not None:
            candidates.extend((rec.values.get("show_id"), element) for element in listed.split(","))
    pairs = {}
    for show_id, value in candidates:
        show_id, value = blank_to_none(show_id), blank_to_none(value)
        if show_id is not None and value is not None:
            pairs[(show_id, value)] = None
    return [{"show_id": s, value_column: v} for s, v in pairs]


# ------------------------------------------------------------------ gold: the snapshot rule


def snapshot(silver_by_day: dict[dt.date, list[dict]], as_of: dt.date) -> list[dict]:
    """For each show_id, its rows of the latest silver partition <= as_of in which it appears."""
    latest: dict[str, dt.date] = {}
    for day, rows in silver_by_day.items():
        if day <= as_of:
            for row in rows:
                if row["show_id"] not in latest or day > latest[row["show_id"]]:
                    latest[row["show_id"]] = day
    return [row for day, rows in silver_by_day.items() if day <= as_of for row in rows if latest[row["show_id"]] == day]


def _table(columns: list[str], dict_rows: Iterable[dict]) -> Table:
    return Table(list(columns), [tuple(r[c] for c in columns) for r in dict_rows])


GOLD_TITLE_COLUMNS = ["show_id", "type", "title", "short_title", "description", "date_added", "release_year",
                      "rating", "rating_group", "duration_minutes", "duration_seasons", "type_flag",
                      "_source_format", "_source_file", "_source_line", "duration_ranking", "newflag"]
# AMBIGUITY: the contract names dim_title's grain, not its columns: the title's descriptive silver
# attributes (no lineage), as the product serves them.
DIM_TITLE_COLUMNS = ["title_key", "show_id", "title", "short_title", "type", "type_flag", "rating", "rating_group",
                     "release_year", "date_added", "duration_minutes", "duration_seasons", "description"]


# ------------------------------------------------------------------ title identity (contract: "Title identity")


def normalised(text: Optional[str]) -> str:
    """Lower case; a Latin letter with diacritics becomes its base letter; '&' reads 'and'; every
    run of characters that are neither letters nor digits (any script) is one space; trimmed."""
    chars = []
    for ch in (text or "").lower():
        if "LATIN" in unicodedata.name(ch, ""):
            base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
            ch = base if len(base) == 1 else ch
        chars.append(ch)
    return " ".join(re.sub(r"[\W_]+", " ", "".join(chars).replace("&", " and ")).split())


def identity(titles: list[dict], people: dict[str, set], ingest_order: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """(title_source_ids rows, title_match_review rows), keyed by the members of each title: the
    oracle's `title_key` is "|".join(sorted show_ids of the title), the natural value the
    product's hash stands for."""
    file_rank = {uri: i for i, uri in enumerate(ingest_order)}
    order = {r["show_id"]: (file_rank[r["_source_file"]], r["_source_line"]) for r in titles}
    blocks = defaultdict(lambda: defaultdict(list))
    for r in titles:
        key = normalised(r["title"])
        if key:
            blocks[(r["type"], key)][r["_source_format"]].append(r)
    pairs = []
    for by_format in blocks.values():
        formats = sorted(by_format)
        for i, fa in enumerate(formats):
            for fb in formats[i + 1:]:
                for a in by_format[fa]:
                    for b in by_format[fb]:
                        pairs.append(_evidence(a, b, people))
    passing = [p for p in pairs if p["rule"]]
    per_a = Counter((p["a"]["show_id"], p["b"]["_source_format"]) for p in passing)
    per_b = Counter((p["b"]["show_id"], p["a"]["_source_format"]) for p in passing)
    partner = {}
    for p in pairs:
        a, b = p["a"], p["b"]
        p["rivals"] = max(per_a[(a["show_id"], b["_source_format"])], per_b[(b["show_id"], a["_source_format"])]) \
            if p["rule"] else 0
        if p["rivals"] == 1:
            partner[a["show_id"]] = (b["show_id"], p)
            partner[b["show_id"]] = (a["show_id"], p)
    review = []
    for p in pairs:
        a, b = p["a"], p["b"]
        # A pair with no evidence but the year is a question only while neither title is merged.
        unmerged = a["show_id"] not in partner and b["show_id"] not in partner
        reason = "several_candidates" if p["rivals"] > 1 else \
            "title_and_year_only" if not p["rule"] and p["year_equal"] and unmerged else None
        if reason:
            review.append({"show_id": a["show_id"], "candidate_show_id": b["show_id"], "source_format": a["_source_format"],
                           "candidate_source_format": b["_source_format"], "type": a["type"], "title": a["title"],
                           "release_year": a["release_year"], "candidate_release_year": b["release_year"],
                           "description_similarity": p["similarity"], "shared_people": p["shared"], "reason": reason})
    ids = []
    for r in titles:
        other, p = partner.get(r["show_id"], (None, None))
        members = sorted([r["show_id"]] + ([other] if other else []))
        ids.append({"title_key": "|".join(members), "show_id": r["show_id"], "source_format": r["_source_format"],
                    "type": r["type"], "is_representative": other is None or order[r["show_id"]] > order[other],
                    "match_rule": p["rule"] if p else "no_match", "match_score": p["score"] if p else None,
                    "matched_show_id": other})
    return ids, review


def _evidence(a: dict, b: dict, people: dict[str, set]) -> dict:
    """The contract's evidence and rule for one candidate pair (a's format sorts first)."""
    wa, wb = set(normalised(a["description"]).split()), set(normalised(b["description"]).split())
    similarity = _round_half_up(Fraction(len(wa & wb), len(wa | wb)), 6) if wa | wb else 0.0
    pa, pb = people.get(a["show_id"], set()), people.get(b["show_id"], set())
    shared = len(pa & pb)
    year_equal = a["release_year"] is not None and a["release_year"] == b["release_year"]
    rule = score = None
    if similarity >= 0.8:
        rule, score = "description", similarity
    elif year_equal and shared > 0:
        rule, score = "people_and_year", _round_half_up(Fraction(shared, min(len(pa), len(pb))), 6)
    return {"a": a, "b": b, "similarity": similarity, "shared": shared, "year_equal": year_equal, "rule": rule,
            "score": score}


def gold_titles(snap: list[dict]) -> tuple[list[dict], list[dict]]:
    """(served, dropped): snapshot + duration_ranking (dense, descending, over the whole snapshot)
    + newflag = 1; rows failing `show_id not null` / `newflag not null` are dropped with a reason."""
    durations = sorted({r["duration_minutes"] for r in snap if r["duration_minutes"] is not None}, reverse=True)
    rank = {d: i + 1 for i, d in enumerate(durations)}
    served, dropped = [], []
    for row in snap:
        out = {**row, "duration_ranking": rank.get(row["duration_minutes"]), "newflag": 1}
        reason = "show_id_not_null" if out["show_id"] is None else "newflag_not_null" if out["newflag"] is None else None
        (served if reason is None else dropped).append({**out, "_reason": reason} if reason else out)
    return served, dropped


def _percentile(sorted_values: list[int], p: float) -> float:
    """Exact percentile with linear interpolation between closest ranks (position p * (n - 1))."""
    position = p * (len(sorted_values) - 1)
    lo = math.floor(position)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (position - lo) * (sorted_values[hi] - sorted_values[lo])


def _round_half_up(value: Fraction, places: int) -> float:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def _ranks(counts: dict, within=lambda key: None) -> dict:
    """SQL RANK() by count descending within a group: ties share a rank, the next rank skips."""
    groups = defaultdict(list)
    for key, n in counts.items():
        groups[within(key)].append((key, n))
    ranks = {}
    for items in groups.values():
        ordered = sorted(n for _, n in items)[::-1]
        first = {}
        for i, n in enumerate(ordered):
            first.setdefault(n, i + 1)
        ranks.update({key: first[n] for key, n in items})
    return ranks


def gold_layer(titles_files: Sequence[tuple[Path, str]], lookup_dir: Path, day: str | dt.date,
               ingest_order: Optional[Sequence[str]] = None) -> dict[str, Table]:
    """Every gold table of partition `day`, from the titles files landed on that day
    ((path, the URI the lake records as `_source_file`)) and the lookup files pulled for it
    (`lookup_dir` holds the bytes the HTTP source serves). One partition: its snapshot is its
    silver (the snapshot rule is applied all the same). `ingest_order`: the files' URIs in the
    order they were ingested (default: as given)."""
    as_of = dt.date.fromisoformat(day) if isinstance(day, str) else day
    title_records = [rec for path, uri in titles_files for rec in read_records(Path(path), uri, TITLE_FORMATS)]
    silver = {as_of: silver_titles(title_records)}
    snap = snapshot(silver, as_of)
    served, dropped = gold_titles(snap)
    out = {
        "gold/netflix_titles": _table(GOLD_TITLE_COLUMNS, served),
        "quarantine/gold_netflix_titles": _table(GOLD_TITLE_COLUMNS + ["_reason"], dropped),
    }

    lookups = {}
    for table, (file_name, source_column, value_column, _) in LOOKUPS.items():
        fmt = {table: (source_column, "show_id")}
        records = list(read_records(lookup_dir / file_name, f"pull:{file_name}", fmt))
        lookup_snap = snapshot({as_of: silver_lookup(table, records, title_records)}, as_of)
        # Expectation: show_id not null (silver refused blank ones already).
        lookups[table] = [r for r in lookup_snap if r["show_id"] is not None]
        out[f"gold/{table}"] = _table(["show_id", value_column], lookups[table])

    # ---- title identity: one title per real title across sources, described by its representative
    cast = [(r["show_id"], r["cast_name"]) for r in lookups["netflix_cast"]]
    directors = [(r["show_id"], r["director_name"]) for r in lookups["netflix_directors"]]
    credited = defaultdict(set)
    for show_id, name in cast + directors:
        if name and name.strip(" "):
            credited[show_id].add(name.strip(" ").lower())
    ids, review = identity(served, credited, ingest_order or [uri for _, uri in titles_files])
    out["gold/title_source_ids"] = _table(["title_key", "show_id", "source_format", "type", "is_representative",
                                           "match_rule", "match_score", "matched_show_id"], ids)
    out["gold/title_match_review"] = _table(
        ["show_id", "candidate_show_id", "source_format", "candidate_source_format", "type", "title", "release_year",
         "candidate_release_year", "description_similarity", "shared_people", "reason"], review)
    key_of = {r["show_id"]: r["title_key"] for r in ids}
    others = {r["show_id"] for r in ids if not r["is_representative"]}

    # ---- dimensional model
    titles = [{**r, "title_key": key_of[r["show_id"]]} for r in served if r["show_id"] not in others]
    out["gold/dim_title"] = _table(DIM_TITLE_COLUMNS, titles)
    countries = [(r["show_id"], r["country"]) for r in lookups["netflix_countries"]]
    genres = [(r["show_id"], r["category"]) for r in lookups["netflix_category"]]
    # AMBIGUITY: the dimensions and bridges hold every value of the gold lookups, including rows of
    # show_ids that are not in dim_title (the contract makes `bridge show_id in dim_title` a
    # warning, so orphans are expected, and counted, not removed).
    # The title history of a lake with one partition: one version per title, current since D.
    # AMBIGUITY: the issue names rating, duration, description, countries and genres; the product
    # tracks every descriptive column dim_title takes from silver (its derived short_title, type_flag
    # and rating_group follow from them) and the representative show_id; countries and genres are
    # the representative's sorted distinct values.
    since = dt.date.fromisoformat(str(day))
    listed = {"countries": defaultdict(set), "genres": defaultdict(set)}
    for name, pairs in (("countries", countries), ("genres", genres)):
        for show_id, value in pairs:
            if value is not None:
                listed[name][show_id].add(value)
    tracked = ["show_id", "title", "type", "rating", "release_year", "date_added", "duration_minutes",
               "duration_seasons", "description"]
    out["gold/dim_title_history"] = Table(
        ["title_key", *tracked, "countries", "genres", "valid_from", "valid_to", "is_current"],
        [(r["title_key"], *[r[c] for c in tracked], tuple(sorted(listed["countries"][r["show_id"]])),
          tuple(sorted(listed["genres"][r["show_id"]])), since, None, True) for r in titles])
    out["gold/dim_person"] = Table(["name"], [(n,) for n in sorted({n for _, n in cast + directors})])
    out["gold/dim_country"] = Table(["country"], [(c,) for c in sorted({c for _, c in countries})])
    out["gold/dim_genre"] = Table(["genre"], [(g,) for g in sorted({g for _, g in genres})])
    # A bridge keeps the rows of representative titles (and of orphans, title_key null): the other
    # source's lists of a merged title are not its attributes.
    out["gold/bridge_title_person"] = Table(
        ["show_id", "title_key", "name", "role"],
        sorted({(s, key_of.get(s), n, role) for role, pairs in (("cast", cast), ("director", directors))
                for s, n in pairs if s not in others}, key=repr),
    )
    out["gold/bridge_title_country"] = Table(
        ["show_id", "title_key", "country"], sorted({(s, key_of.get(s), c) for s, c in countries if s not in others}, key=repr))
    out["gold/bridge_title_genre"] = Table(
        ["show_id", "title_key", "genre"], sorted({(s, key_of.get(s), g) for s, g in genres if s not in others}, key=repr))

    dates = [r["date_added"] for r in titles if r["date_added"] is not None]
    calendar = []
    if dates:
        d, hi = min(dates), max(dates)
        while d <= hi:
            # AMBIGUITY: the contract says "calendar"; its attributes are the product's names
            # (English month/day names, quarter, 'yyyy-MM', weekend = Saturday or Sunday).
            calendar.append((d, d.year, (d.month - 1) // 3 + 1, d.month, MONTHS[d.month - 1], f"{d.year:04d}-{d.month:02d}",
                             d.day, DAYS[d.weekday()], d.weekday() >= 5))
            d += dt.timedelta(days=1)
    out["gold/dim_date"] = Table(
        ["date", "year", "quarter", "month", "month_name", "year_month", "day", "day_name", "is_weekend"], calendar
    )

    # AMBIGUITY: one fact row per served title, a null date_added included (KPIs on time skip it).
    fact = [
        {
            "title_key": r["title_key"], "show_id": r["show_id"], "date_added": r["date_added"], "type": r["type"], "release_year": r["release_year"],
            "duration_minutes": r["duration_minutes"], "duration_seasons": r["duration_seasons"],
            "years_to_netflix": (r["date_added"].year - r["release_year"])
            if r["date_added"] is not None and r["release_year"] is not None else None,
        }
        for r in titles
    ]
    out["gold/fact_title_added"] = _table(
        ["title_key", "show_id", "date_added", "type", "release_year", "duration_minutes", "duration_seasons", "years_to_netflix"], fact
    )

    # ---- KPIs: counted over titles of the fact (an orphan bridge row has no title to count).
    type_of = {f["show_id"]: f["type"] for f in fact}
    added = {f["show_id"]: f["date_added"] for f in fact if f["date_added"] is not None}

    # AMBIGUITY: `month` is the first day of the month (a date).
    by_month = defaultdict(set)
    for show_id, date in added.items():
        by_month[(date.replace(day=1), type_of[show_id])].add(show_id)
    out["gold/kpi_titles_added_by_month"] = Table(
        ["month", "type", "titles"], [(m, t, len(ids)) for (m, t), ids in by_month.items()]
    )

    per_country = defaultdict(set)
    for show_id, country in countries:
        if show_id in type_of:
            per_country[country].add(show_id)
    titles_per_country = {c: len(ids) for c, ids in per_country.items()}
    # AMBIGUITY: `rank` is SQL RANK() by titles, descending (ties share a rank); same for people.
    country_rank = _ranks(titles_per_country)
    out["gold/kpi_top_countries"] = Table(
        ["country", "titles", "movies", "tv_shows", "rank"],
        [(c, len(ids), sum(type_of[s] == "Movie" for s in ids), sum(type_of[s] == "TV Show" for s in ids), country_rank[c])
         for c, ids in per_country.items()],
    )

    genre_year = defaultdict(set)
    for show_id, genre in genres:
        if show_id in added:
            genre_year[(added[show_id].year, genre)].add(show_id)
    out["gold/kpi_genre_by_year"] = Table(
        ["year_added", "genre", "titles"], [(y, g, len(ids)) for (y, g), ids in genre_year.items()]
    )

    # AMBIGUITY: a null rating is a rating group of its own; share = titles / titles of the type.
    mix = Counter((r["rating"], r["type"]) for r in titles)
    per_type = Counter(r["type"] for r in titles)
    out["gold/kpi_rating_mix"] = Table(
        ["rating", "type", "titles", "share"],
        [(rating, type_, n, n / per_type[type_]) for (rating, type_), n in mix.items()],
    )

    people = defaultdict(set)
    for role, pairs in (("cast", cast), ("director", directors)):
        for show_id, name in pairs:
            if show_id in type_of:
                people[(role, name)].add(show_id)
    people_counts = {k: len(v) for k, v in people.items()}
    people_rank = _ranks(people_counts, within=lambda key: key[0])
    out["gold/kpi_top_people"] = Table(
        ["role", "name", "titles", "rank"], [(role, name, n, people_rank[(role, name)]) for (role, name), n in people_counts.items()]
    )

    # Movies with a known duration (0 is the original rule's "missing") and a release year.
    # AMBIGUITY: avg_minutes is rounded to 1 decimal (half up); median and p90 are exact
    # percentiles with linear interpolation (not nearest rank), unrounded.
    decades = defaultdict(dict)
    for f in fact:
        if f["type"] == "Movie" and f["duration_minutes"] > 0 and f["release_year"] is not None:
            decades[f["release_year"] // 10 * 10][f["show_id"]] = f["duration_minutes"]
    rows = []
    for decade, minutes_by_id in decades.items():
        minutes = sorted(minutes_by_id.values())
        rows.append((decade, len(minutes), _round_half_up(Fraction(sum(minutes), len(minutes)), 1),
                     _percentile(minutes, 0.5), _percentile(minutes, 0.9)))
    out["gold/kpi_movie_minutes_by_decade"] = Table(
        ["release_decade", "movies", "avg_minutes", "median_minutes", "p90_minutes"], rows
    )
    return out
