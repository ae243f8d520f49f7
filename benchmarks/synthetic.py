"""Deterministic synthetic Netflix-like catalogs, at any size, in both source formats.

    python -m benchmarks.synthetic --titles 100000 --format kaggle --seed 7 --out DIR [--jobs 2] \
        [--incremental K --rows-per-file 1000 --update-fraction 0.3] [--no-defects | --defect KIND=RATE ...]

What is generated, and from what
--------------------------------
Every distribution comes from the bundled real files (`netflix_assets/data`),
read with the csv module the first time a format is used (`profile(fmt)`,
cached in memory). The Kaggle format learns from the 8,807-title Kaggle file;
the tutorial format from the tutorial titles file and its four lookup files.

- type; per type: rating, duration (minutes for movies, seasons for shows),
  date_added (the real dates, empty ones included), release year as
  year(date_added) minus the real gap, list lengths (cast, director, country,
  genre: the real counts, zeros included), countries (first position and the
  others apart), genres (sorted, as in the real lists);
- title: a real word count, words drawn by real frequency; description: a real
  word count made of three runs of consecutive words of the real descriptions;
- people: real names by real frequency, and more people as the catalog grows.
  The title with id i draws each name from one of
  K(i) = spread * max(1, i / real_titles) ** beta "cohorts": cohort 0 is the real
  names, cohort c > 0 the same popularity curve over synthesized people (a real
  first name + a real last name, one-to-one). beta is the Heaps exponent of the
  real lists (kaggle: 0.75 cast, 0.85 directors), `spread` (~2) makes a catalog
  of the real size have as many distinct people as the real one, so the number
  of people grows with size as in the real data. Nothing grows in memory.

Determinism: a title is a pure function of (seed, format, id), drawn from its
own RNG. Defects are drawn from separate streams (one per SEGMENT of ids of a
catalog, one per incremental file), so changing a defect rate moves defects
around but does not change any title, and the first n titles of a bigger
catalog are those of a catalog of n. The same call writes byte-identical
files, with any number of `jobs`.

Cost (2-core VM): ~40-50 us of CPU per title (1M Kaggle titles: ~50 s of CPU,
393 MB), peak RSS ~140 MB whatever the size (77 MB of it is importing
netflix_assets). `jobs=N` draws segments (incremental files: whole files) in N processes.

Ids: `start_id` (default 1) numbers the titles. Kaggle show_ids are "s<id>" like
the real ones (so they collide with the real file's s1..s8807: start above 8807
to land both); tutorial ones are TUTORIAL_ID_OFFSET + id, above every real id.

Defects (`Defects`): rates are shares of titles; `None` means "the rate observed
in the real file of this format" (measured at runtime, `Defects.observed`).

| kind | what is written | parsed / silver outcome |
|---|---|---|
| broken | a record split over two physical lines by a bad export. tutorial: the real shape (both halves padded to 9 fields, show_id empty on both; the second half starts with the rest of the split text plus a stray quote). kaggle: the title split; the halves have 3 and 10 fields (padding them would leave show_id and type on the first half and pass a truncated title as valid) | 2 records, both quarantined: tutorial `missing_show_id`, kaggle `malformed_record` (`_rescued_data`); the title is lost |
| multiline | a newline inside the quoted title or description (the Kaggle file's shape) | 1 valid record over 2 physical lines |
| leading_space | date_added with a leading space (" September 25, 2021") | valid; silver trims |
| rating_duration | kaggle movies only: rating "74 min", duration empty | valid; silver moves it to duration_minutes |
| stray_comma | kaggle only: a leading or trailing comma in the country list | an empty country element (lookup quarantine `empty_value`) |
| duplicate_name | a person listed twice for the same title (tutorial: two equal cast/director lookup rows; kaggle: a name twice in the list) | lookup duplicate |
| duplicate | an exact copy of a title record, written 1-50 records later (none in the real titles files: default 0) | title `duplicate` |

Incremental files (`incremental_files`): each file mixes updates of titles
already emitted (the base catalog `start_id .. start_id+base_titles-1` and the
earlier files' new titles; same show_id, same title/type/people, changed
date_added / rating / description) and new titles with fresh ids.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import functools
import heapq
import math
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

import netflix_assets
from netflix_assets.transforms.formats import CAST, CATEGORY, COUNTRIES, DIRECTORS, KAGGLE, TUTORIAL, SourceFormat

DATA_DIR = Path(netflix_assets.__file__).resolve().parent / "data"
KAGGLE_FILE = DATA_DIR / "netflix_kaggle" / "netflix_titles.csv"
TUTORIAL_DIR = DATA_DIR / "netflix_tutorial"

FORMATS = {"kaggle": KAGGLE, "tutorial": TUTORIAL}
MOVIE, SHOW = "Movie", "TV Show"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
# Tutorial show_ids are Netflix's numeric ids (real ones: 247747 .. 81235729):
# synthetic ones are offset above them, so that they never collide.
TUTORIAL_ID_OFFSET = 90_000_000
# (file name, its format, the list it holds) of the tutorial lookup files.
LOOKUP_FILES = (
    ("netflix_cast.csv", CAST, "cast"),
    ("netflix_category.csv", CATEGORY, "genres"),
    ("netflix_countries.csv", COUNTRIES, "countries"),
    ("netflix_directors.csv", DIRECTORS, "directors"),
)
LIST_KINDS = ("directors", "cast", "countries", "genres")
DUPLICATE_MAX_GAP = 50
SEGMENT = 1 << 16  # titles per defect stream (and per task when drawn in parallel)
_DURATION_IN_RATING = re.compile(r"^[0-9]+ min$")
_MASK64 = (1 << 64) - 1

csv.field_size_limit(16 * 1024 * 1024)


def show_id(fmt: str, ident: int) -> str:
    """The show_id text of synthetic title number `ident` in a format."""
    return f"s{ident}" if fmt == "kaggle" else str(TUTORIAL_ID_OFFSET + ident)


# ---------------------------------------------------------------- defects


@dataclass(frozen=True)
class Defects:
    """Per-kind defect rates, as shares of titles. None: the rate observed in the
    real file of the format being generated (see the module docstring; `Stats`
    counts what was injected). rating_duration and stray_comma exist in the
    Kaggle format only (ignored for tutorial); a broken title carries no other
    defect."""

    broken: Optional[float] = None
    multiline: Optional[float] = None
    leading_space: Optional[float] = None
    rating_duration: Optional[float] = None
    stray_comma: Optional[float] = None
    duplicate_name: Optional[float] = None
    duplicate: Optional[float] = None

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def none(cls) -> "Defects":
        return cls(**{k: 0.0 for k in cls.kinds()})

    @classmethod
    def uniform(cls, rate: float) -> "Defects":
        return cls(**{k: rate for k in cls.kinds()})

    @classmethod
    def observed(cls, fmt: str) -> "Defects":
        """The rates measured in the bundled real file of `fmt`."""
        return cls(**profile(fmt).observed_defects)

    def resolve(self, fmt: str) -> "Defects":
        observed = profile(fmt).observed_defects
        values = {k: (observed[k] if getattr(self, k) is None else float(getattr(self, k))) for k in self.kinds()}
        for kind, rate in values.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"defect rate {kind}={rate} is not within [0, 1]")
        return Defects(**values)

    def as_dict(self) -> dict[str, Optional[float]]:
        return {k: getattr(self, k) for k in self.kinds()}


def _defects(defects: Union[Defects, float, None], fmt: str) -> Defects:
    if defects is None:
        defects = Defects()
    elif isinstance(defects, (int, float)):
        defects = Defects.uniform(float(defects))
    return defects.resolve(fmt)


# ---------------------------------------------------------------- profile


@dataclass
class TypeProfile:
    """Empirical pools for one type: each is a list of observed values (repeats
    included), so a uniform pick draws by the real frequency."""

    ratings: list[str] = field(default_factory=list)
    durations: list[int] = field(default_factory=list)
    dates: list[Optional[int]] = field(default_factory=list)  # date ordinals, None = empty
    gaps: list[int] = field(default_factory=list)  # year(date_added) - release_year
    years: list[int] = field(default_factory=list)
    lengths: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in LIST_KINDS})
    first_countries: list[str] = field(default_factory=list)
    other_countries: list[str] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)


@dataclass
class NamePool:
    """People of one role: real names by frequency, and the parts synthesized
    people are made of."""

    occurrences: list[str]  # one entry per real credit
    name_ids: list[int]  # index of each occurrence's distinct name
    firsts: list[str]
    lasts: list[str]
    beta: float  # Heaps exponent of the real credits (distinct names ~ titles ** beta)
    names: int = 0  # distinct real names
    n_firsts: int = 0
    pairs: int = 0  # len(firsts) * len(lasts)
    multiplier: int = 0  # coprime with pairs: spreads synthesized people over the pairs
    spread: float = 1.0  # cohorts at the real size (see _spread)

    def __post_init__(self) -> None:
        self.names = len(set(self.occurrences))
        self.spread = _spread(Counter(Counter(self.occurrences).values()), len(self.occurrences), self.names)
        self.n_firsts = len(self.firsts)
        self.pairs = len(self.firsts) * len(self.lasts)
        self.multiplier = 2654435761
        while math.gcd(self.multiplier, self.pairs) != 1:
            self.multiplier += 2


@dataclass
class Profile:
    """Everything learned from the real data of one format (`profile(fmt)`)."""

    fmt: str
    source: str
    real_titles: int  # well-formed titles learned from
    types: list[str]  # one entry per real title
    by_type: dict[str, TypeProfile]
    cast: NamePool
    directors: NamePool
    title_words: list[str]
    title_lengths: list[int]
    description_words: list[str]
    description_lengths: list[int]
    observed_defects: dict[str, float]
    observed_counts: dict[str, int]
    eligible: dict[str, float]  # share of titles a defect kind can apply to


def _parse_kaggle_date(text: str) -> Optional[int]:
    text = text.strip()
    return dt.datetime.strptime(text, "%B %d, %Y").date().toordinal() if text else None


def _parse_tutorial_date(text: str) -> Optional[int]:
    text = text.strip()
    return dt.datetime.strptime(text, "%m/%d/%Y").date().toordinal() if text else None


def parse_date_added(text: str) -> Optional[dt.date]:
    """A date_added of either format ('September 25, 2021', '9/25/2021'), or None."""
    text = text.strip()
    if not text:
        return None
    fmt = "%m/%d/%Y" if "/" in text else "%B %d, %Y"
    return dt.datetime.strptime(text, fmt).date()


def _split_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _heaps_beta(lists: list[list[str]]) -> float:
    """Exponent of distinct values vs titles, between a quarter and all of the
    titles (in a seeded shuffle: the files are ordered by date_added)."""
    lists = list(lists)
    random.Random(0).shuffle(lists)
    seen: set[str] = set()
    quarter = len(lists) // 4
    at_quarter = 0
    for i, values in enumerate(lists, start=1):
        seen.update(values)
        if i == quarter:
            at_quarter = len(seen)
    if not at_quarter or len(seen) <= at_quarter:
        return 0.0
    return math.log(len(seen) / at_quarter) / math.log(len(lists) / quarter)


def _spread(count_of_counts: Counter, credits: int, names: int) -> float:
    """The number of cohorts K such that drawing `credits` names by the real
    frequencies, each from one of K cohorts, gives as many distinct people as the
    real data has: K * D(credits / K) = names, where D(m) = sum over real names
    of 1 - exp(-m * count / credits) is the expected distinct count of m draws.
    (Drawing from one cohort only gives too few: the real names seen once would
    be missed a third of the time.)"""
    if not credits or names >= credits:
        return 1.0

    def distinct(k: float) -> float:
        m = credits / k
        return k * sum(n * (1.0 - math.exp(-m * c / credits)) for c, n in count_of_counts.items())

    lo, hi = 1.0, 2.0
    while distinct(hi) < names and hi < 1e6:
        lo, hi = hi, hi * 2
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if distinct(mid) < names else (lo, mid)
    return (lo + hi) / 2


def _name_pool(lists: list[list[str]]) -> NamePool:
    occurrences = [name for values in lists for name in values]
    ids: dict[str, int] = {}
    name_ids = [ids.setdefault(name, len(ids)) for name in occurrences]
    parts = [name.split() for name in ids]
    firsts = sorted({p[0] for p in parts if len(p) >= 2})
    lasts = sorted({p[-1] for p in parts if len(p) >= 2})
    return NamePool(occurrences, name_ids, firsts, lasts, _heaps_beta(lists))


def _learn(fmt: str, source: str, titles: list[dict], observed_counts: dict[str, int], total_titles: int) -> Profile:
    by_type = {MOVIE: TypeProfile(), SHOW: TypeProfile()}
    for t in titles:
        tp = by_type[t["type"]]
        if t["rating"] is not None:
            tp.ratings.append(t["rating"])
        tp.durations.append(t["duration"])
        tp.dates.append(t["date"])
        if t["date"] is not None:
            tp.gaps.append(dt.date.fromordinal(t["date"]).year - t["year"])
        tp.years.append(t["year"])
        for kind in LIST_KINDS:
            tp.lengths[kind].append(len(t[kind]))
        if t["countries"]:
            tp.first_countries.append(t["countries"][0])
            tp.other_countries.extend(t["countries"][1:])
        tp.genres.extend(t["genres"])
    for tp in by_type.values():
        tp.other_countries = tp.other_countries or tp.first_countries
    title_words = [w for t in titles for w in t["title"].split()]
    description_words = [w for t in titles for w in t["description"].split()]
    n = len(titles)
    eligible = {
        "broken": 1.0,
        "multiline": 1.0,
        "duplicate": 1.0,
        "leading_space": sum(1 for t in titles if t["date"] is not None) / n,
        "rating_duration": (sum(1 for t in titles if t["type"] == MOVIE) / n) if fmt == "kaggle" else 0.0,
        "stray_comma": (sum(1 for t in titles if t["countries"]) / n) if fmt == "kaggle" else 0.0,
        "duplicate_name": sum(1 for t in titles if t["cast"] or t["directors"]) / n,
    }
    observed = {k: observed_counts.get(k, 0) / total_titles for k in Defects.kinds()}
    return Profile(
        fmt=fmt,
        source=source,
        real_titles=n,
        types=[t["type"] for t in titles],
        by_type=by_type,
        cast=_name_pool([t["cast"] for t in titles]),
        directors=_name_pool([t["directors"] for t in titles]),
        title_words=title_words,
        title_lengths=[len(t["title"].split()) for t in titles],
        description_words=description_words,
        description_lengths=[len(t["description"].split()) for t in titles],
        observed_defects=observed,
        observed_counts=dict(observed_counts),
        eligible=eligible,
    )


def _learn_kaggle(path: Path) -> Profile:
    titles, counts, records = [], Counter(), Counter()
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = tuple(next(reader))
        assert header == KAGGLE.columns, header
        for fields in reader:
            records[tuple(fields)] += 1
            if len(fields) != len(header) or not fields[0].strip():
                counts["broken_records"] += 1
                continue
            row = dict(zip(header, fields))
            if row["type"] not in (MOVIE, SHOW):
                counts["broken_records"] += 1
                continue
            if any("\n" in v or "\r" in v for v in fields):
                counts["multiline"] += 1
            if row["date_added"][:1] == " ":
                counts["leading_space"] += 1
            rating, duration = row["rating"], row["duration"]
            if _DURATION_IN_RATING.match(rating) and not duration:
                counts["rating_duration"] += 1
                rating, duration = None, rating
            country = row["country"]
            if country[:1] == "," or country[-1:] == ",":
                counts["stray_comma"] += 1
            lists = {k: _split_list(row[c]) for k, c in
                     (("directors", "director"), ("cast", "cast"), ("countries", "country"), ("genres", "listed_in"))}
            if any(len(lists[k]) != len(set(lists[k])) for k in ("cast", "directors")):
                counts["duplicate_name"] += 1
            lists = {k: _dedupe(v) for k, v in lists.items()}
            titles.append({
                "type": row["type"], "rating": rating, "duration": int(duration.split()[0]),
                "date": _parse_kaggle_date(row["date_added"]), "year": int(row["release_year"]),
                "title": row["title"], "description": row["description"], **lists,
            })
    counts["duplicate"] = sum(c - 1 for c in records.values())
    # A record split by a bad export becomes two records: count titles, not halves.
    counts["broken"] = counts.pop("broken_records", 0) // 2
    return _learn("kaggle", str(path), titles, counts, len(titles) + counts["broken"])


def _learn_tutorial(folder: Path) -> Profile:
    def rows(name: str):
        with open(folder / name, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = tuple(next(reader))
            yield header
            yield from reader

    counts = Counter()
    lists: dict[str, dict[str, list[str]]] = {}
    for name, fmt, kind in LOOKUP_FILES:
        it = rows(name)
        assert next(it) == fmt.columns
        per_id: dict[str, list[str]] = defaultdict(list)
        for value, sid in it:
            per_id[sid].append(value)
        lists[kind] = per_id
    dup_ids = {sid for kind in ("cast", "directors") for sid, v in lists[kind].items() if len(v) != len(set(v))}
    counts["duplicate_name"] = len(dup_ids)

    titles, records = [], Counter()
    it = rows("netflix_titles.csv")
    header = next(it)
    assert header == TUTORIAL.columns, header
    for fields in it:
        records[tuple(fields)] += 1
        row = dict(zip(header, fields))
        if len(fields) != len(header) or not row["show_id"].strip() or row["type"] not in (MOVIE, SHOW):
            counts["broken_records"] += 1
            continue
        if any("\n" in v or "\r" in v for v in fields):
            counts["multiline"] += 1
        if row["date_added"][:1] == " ":
            counts["leading_space"] += 1
        movie = row["type"] == MOVIE
        sid = row["show_id"]
        titles.append({
            "type": row["type"], "rating": row["rating"],
            "duration": int(row["duration_minutes"] if movie else row["duration_seasons"]),
            "date": _parse_tutorial_date(row["date_added"]), "year": int(row["release_year"]),
            "title": row["title"], "description": row["description"],
            **{kind: _dedupe(lists[kind].get(sid, [])) for kind in LIST_KINDS},
        })
    counts["duplicate"] = sum(c - 1 for c in records.values())
    counts["broken"] = counts.pop("broken_records", 0) // 2
    return _learn("tutorial", str(folder), titles, counts, len(titles) + counts["broken"])


@functools.lru_cache(maxsize=None)
def profile(fmt: str) -> Profile:
    """The profile learned from the bundled real data of `fmt` (cached)."""
    if fmt == "kaggle":
        return _learn_kaggle(KAGGLE_FILE)
    if fmt == "tutorial":
        return _learn_tutorial(TUTORIAL_DIR)
    raise ValueError(f"unknown format {fmt!r} (kaggle or tutorial)")


# ---------------------------------------------------------------- titles


@dataclass(slots=True)
class Title:
    ident: int
    show_id: str
    type: str
    title: str
    directors: list[str]
    cast: list[str]
    countries: list[str]
    date: Optional[int]  # ordinal
    year: int
    rating: str
    duration: int  # minutes (movie) or seasons (show)
    genres: list[str]
    description: str


class _TitleMaker:
    """Draws titles: title `ident` is a pure function of (seed, format, ident)."""

    def __init__(self, prof: Profile, seed: int):
        self.prof = prof
        self.fmt = prof.fmt
        self.seed = seed
        self.seed_base = (int(seed) & _MASK64) << 42
        self.rng = random.Random()
        self._dates: dict[Optional[int], str] = {None: ""}
        self._years: dict[int, int] = {}
        self.min_year = min(y for tp in prof.by_type.values() for y in tp.years)
        self.max_year = max(y for tp in prof.by_type.values() for y in tp.years)

    # -- helpers

    def _year(self, ordinal: int) -> int:
        year = self._years.get(ordinal)
        if year is None:
            year = self._years[ordinal] = dt.date.fromordinal(ordinal).year
        return year

    def date_text(self, ordinal: Optional[int]) -> str:
        text = self._dates.get(ordinal)
        if text is None:
            d = dt.date.fromordinal(ordinal)
            text = f"{MONTHS[d.month - 1]} {d.day}, {d.year}" if self.fmt == "kaggle" else f"{d.month}/{d.day}/{d.year}"
            self._dates[ordinal] = text
        return text

    def _names(self, rand, pool: NamePool, k: int, cohorts: float) -> list[str]:
        """k distinct people. One draw picks both the credit (integer part) and the
        cohort (the fraction left: ~37 random bits); see `_person`."""
        occurrences, name_ids, n_occ = pool.occurrences, pool.name_ids, len(pool.occurrences)
        names, multiplier, pairs, n_firsts = pool.names, pool.multiplier, pool.pairs, pool.n_firsts
        firsts, lasts = pool.firsts, pool.lasts
        synthesize = cohorts > 1.0
        out: list[str] = []
        tries = 4 * k  # a draw that repeats a name is drawn again, within reason
        while len(out) < k and tries:
            tries -= 1
            x = rand() * n_occ
            j = int(x)
            cohort = int((x - j) * cohorts) if synthesize else 0
            if cohort:
                h = ((cohort * names + name_ids[j]) * multiplier) % pairs
                name = firsts[h % n_firsts] + " " + lasts[h // n_firsts]
            else:
                name = occurrences[j]
            if name not in out:
                out.append(name)
        return out

    @staticmethod
    def _person(pool: NamePool, name_id: int, cohort: int) -> str:
        """Synthesized person `name_id` of `cohort` (> 0): a (first, last) pair, one
        to one while cohort * names + name_id < firsts * lasts (~10^8). Inlined in
        `_names`."""
        h = ((cohort * pool.names + name_id) * pool.multiplier) % pool.pairs
        return f"{pool.firsts[h % pool.n_firsts]} {pool.lasts[h // pool.n_firsts]}"

    @staticmethod
    def _distinct(rand, first: list[str], rest: list[str], k: int) -> list[str]:
        out: list[str] = []
        pool = first
        for _ in range(k):
            for _attempt in range(6):
                value = pool[int(rand() * len(pool))]
                if value not in out:
                    out.append(value)
                    break
            pool = rest
        return out

    def words(self, rand, words: list[str], lengths: list[int]) -> str:
        k = lengths[int(rand() * len(lengths))]
        n = len(words)
        return " ".join([words[int(rand() * n)] for _ in range(max(k, 1))])

    def title_text(self, rand) -> str:
        text = self.words(rand, self.prof.title_words, self.prof.title_lengths)
        return text[:1].upper() + text[1:]

    def description(self, rand) -> str:
        """Three runs of consecutive words of the real descriptions (all of them
        in one list), as long together as a real description."""
        words, lengths = self.prof.description_words, self.prof.description_lengths
        k = max(lengths[int(rand() * len(lengths))], 3)
        a = k // 3
        b = k - 2 * a
        span = len(words) - b
        i, j, m = int(rand() * span), int(rand() * span), int(rand() * span)
        text = " ".join(words[i:i + a] + words[j:j + a] + words[m:m + b])
        text = text[:1].upper() + text[1:]
        return text if text[-1:] in ".!?" else text.rstrip(",;:") + "."

    def rating(self, rand, type_: str) -> str:
        ratings = self.prof.by_type[type_].ratings
        return ratings[int(rand() * len(ratings))]

    def date(self, rand, type_: str) -> Optional[int]:
        dates = self.prof.by_type[type_].dates
        return dates[int(rand() * len(dates))]

    # -- one title

    def title(self, ident: int) -> Title:
        prof = self.prof
        rng = self.rng
        rng.seed(self.seed_base | ident)
        rand = rng.random
        type_ = prof.types[int(rand() * len(prof.types))]
        tp = prof.by_type[type_]
        date = tp.dates[int(rand() * len(tp.dates))]
        if date is None:
            year = tp.years[int(rand() * len(tp.years))]
        else:
            year = min(self.max_year, max(self.min_year, self._year(date) - tp.gaps[int(rand() * len(tp.gaps))]))
        lengths = tp.lengths
        scale = max(1.0, ident / prof.real_titles)
        n_dir, n_cast, n_country, n_genre = [
            pool[int(rand() * len(pool))]
            for pool in (lengths["directors"], lengths["cast"], lengths["countries"], lengths["genres"])
        ]
        return Title(
            ident,
            show_id(self.fmt, ident),
            type_,
            self.title_text(rand),
            self._names(rand, prof.directors, n_dir, prof.directors.spread * scale ** prof.directors.beta)
            if n_dir else [],
            self._names(rand, prof.cast, n_cast, prof.cast.spread * scale ** prof.cast.beta) if n_cast else [],
            self._distinct(rand, tp.first_countries, tp.other_countries, n_country) if n_country else [],
            date,
            year,
            tp.ratings[int(rand() * len(tp.ratings))],
            tp.durations[int(rand() * len(tp.durations))],
            sorted(self._distinct(rand, tp.genres, tp.genres, n_genre)),
            self.description(rand),
        )

    def update(self, base: Title, rand) -> tuple[Title, list[str]]:
        """A newer version of `base`: same id, title, type and people; at least one of
        date_added, rating and description changed."""
        chosen = [f for f in ("date_added", "rating", "description") if rand() < 0.5] or ["description"]
        changed = dataclasses.replace(base)
        for f in chosen:
            for _attempt in range(8):
                if f == "date_added":
                    changed.date = self.date(rand, base.type)
                    if changed.date != base.date:
                        break
                elif f == "rating":
                    changed.rating = self.rating(rand, base.type)
                    if changed.rating != base.rating:
                        break
                else:
                    changed.description = self.description(rand)
                    if changed.description != base.description:
                        break
        pairs = (("date_added", base.date, changed.date), ("rating", base.rating, changed.rating),
                 ("description", base.description, changed.description))
        fields = [f for f, old, new in pairs if old != new]
        if not fields:
            changed.description = base.description + " (updated)"
            fields = ["description"]
        return changed, fields


# ---------------------------------------------------------------- records


@dataclass
class Stats:
    """What one titles file holds, and what the pipeline should make of it."""

    fmt: str
    path: Optional[str] = None
    titles: int = 0  # titles written (broken ones included)
    new_titles: int = 0
    updated_titles: int = 0
    first_id: Optional[int] = None
    last_id: Optional[int] = None
    records: int = 0  # CSV records after the header (what bronze reads)
    physical_lines: int = 0  # after the header
    defects: Counter = field(default_factory=Counter)
    updated_ids: list[int] = field(default_factory=list)
    changes: Counter = field(default_factory=Counter)  # updates: field -> times changed
    lookup_rows: dict[str, int] = field(default_factory=dict)  # tutorial lookup file -> rows

    @property
    def expected(self) -> dict[str, int]:
        """Record counts the parser and silver should find: accepted titles and
        quarantine reasons (silver.classify_titles names)."""
        broken = self.defects["broken"]
        out = {
            "records": self.records,
            "accepted": self.titles - broken,
            "malformed_record": 2 * broken if self.fmt == "kaggle" else 0,
            "missing_show_id": 2 * broken if self.fmt == "tutorial" else 0,
            "duplicate": self.defects["duplicate"],
        }
        return out

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("fmt", "path", "titles", "new_titles", "updated_titles", "first_id",
                                           "last_id", "records", "physical_lines", "lookup_rows")}
        d["changes"] = dict(self.changes)
        d["defects"] = dict(self.defects)
        d["expected"] = self.expected
        return d


class _Records:
    """Turns titles into CSV records, injecting defects from its own stream (one
    per catalog segment or incremental file)."""

    def __init__(self, maker: _TitleMaker, defects: Defects, defect_seed: str, stats: Stats,
                 on_title: Optional[Callable[[Title], None]] = None):
        self.on_title = on_title
        self.maker = maker
        self.fmt = maker.fmt
        self.stats = stats
        self.drng = random.Random(defect_seed)
        eligible = maker.prof.eligible
        # Rates are shares of all titles: a kind that applies to some titles only
        # is drawn among those with rate / (their share).
        self.p = {k: (min(1.0, getattr(defects, k) / eligible[k]) if eligible[k] else 0.0) for k in Defects.kinds()}
        self.kinds = tuple(k for k in self.p if k != "duplicate")
        self.rates = tuple(self.p[k] for k in self.kinds)
        self.pending: list[tuple[int, int, list[str], int]] = []  # (due record index, seq, record, extra lines)
        self.seq = 0

    def _split(self, text: str, rand) -> tuple[str, str]:
        spaces = [i for i, c in enumerate(text) if c == " "]
        if spaces:
            i = spaces[int(rand() * len(spaces))]
            return text[:i], text[i + 1:]
        i = max(1, len(text) // 2)
        return text[:i], text[i:]

    def records(self, t: Title) -> tuple[list[list[str]], int]:
        """(records, extra physical lines) for one title; counts its defects."""
        rand, stats = self.drng.random, self.stats
        # One draw per kind and title, always, in a fixed order.
        hit = dict(zip(self.kinds, [rand() < q for q in self.rates]))
        if hit["broken"]:  # a broken title carries no other defect
            hit = dict.fromkeys(hit, False) | {"broken": True}
        kaggle = self.fmt == "kaggle"

        if hit["duplicate_name"] and (t.cast or t.directors):
            # A name listed a second time, later in the list (cast, else directors).
            role = "cast" if t.cast else "directors"
            people = list(getattr(t, role))
            people.insert(int(rand() * len(people)) + 1, people[int(rand() * len(people))])
            t = dataclasses.replace(t, **{role: people})
            stats.defects["duplicate_name"] += 1
        if self.on_title is not None:
            self.on_title(t)
        date = self.maker.date_text(t.date)
        if hit["leading_space"] and date:
            date = " " + date
            stats.defects["leading_space"] += 1
        title, description = t.title, t.description
        broken = hit["broken"]
        if broken:
            stats.defects["broken"] += 1
        elif hit["multiline"]:
            if " " in title and rand() < 0.5:
                a, b = self._split(title, rand)
                title = f"{a}\n{b}"
            else:
                a, b = self._split(description, rand)
                description = f"{a}\n{b}"
            stats.defects["multiline"] += 1

        if kaggle:
            rating = t.rating
            if t.type == MOVIE:
                duration = f"{t.duration} min"
            else:
                duration = f"{t.duration} Season" if t.duration == 1 else f"{t.duration} Seasons"
            if hit["rating_duration"] and t.type == MOVIE:
                rating, duration = duration, ""
                stats.defects["rating_duration"] += 1
            country = ", ".join(t.countries)
            if hit["stray_comma"] and country:
                country = ", " + country if rand() < 2 / 7 else country + ","
                stats.defects["stray_comma"] += 1
            record = [t.show_id, t.type, title, ", ".join(t.directors), ", ".join(t.cast), country, date,
                      str(t.year), rating, duration, ", ".join(t.genres), description]
            if broken:  # the title split: halves of 3 and 10 fields
                a, b = self._split(title, rand)
                return [record[:2] + [a], [b + '"'] + record[3:]], 0
        else:
            movie = t.type == MOVIE
            record = [str(t.duration) if movie else "", "" if movie else str(t.duration), t.type, title, date,
                      str(t.year), t.rating, description, t.show_id]
            if broken:  # the real shape: both halves padded to 9 fields, show_id lost
                k = 3 if rand() < 0.5 and " " in title else 7
                a, b = self._split(record[k], rand)
                width = len(record)
                first = record[:k] + [a]
                second = [b + '"'] + record[k + 1:-1] + [t.show_id]
                first += [""] * (width - len(first))
                second += [""] * (width - len(second))
                return [first, second], 0
        extra = 1 if (title is not t.title or description is not t.description) else 0
        return [record], extra

    def emit(self, t: Title) -> list[list[str]]:
        """Records of `t`, then any duplicate that falls due."""
        stats = self.stats
        records, extra = self.records(t)
        stats.titles += 1
        if stats.first_id is None or t.ident < stats.first_id:
            stats.first_id = t.ident
        if stats.last_id is None or t.ident > stats.last_id:
            stats.last_id = t.ident
        stats.records += len(records)
        stats.physical_lines += len(records) + extra
        if len(records) == 1 and self.drng.random() < self.p["duplicate"]:
            stats.defects["duplicate"] += 1
            due = stats.records + 1 + int(self.drng.random() * DUPLICATE_MAX_GAP)
            heapq.heappush(self.pending, (due, self.seq, records[0], extra))
            self.seq += 1
        if self.pending and self.pending[0][0] <= stats.records + 1:
            records = records + self._due(stats.records + 1)
        return records

    def _due(self, upto: Optional[int]) -> list[list[str]]:
        """Pending duplicates due at record index `upto` (1-based; None: all)."""
        out = []
        while self.pending and (upto is None or self.pending[0][0] <= upto + len(out)):
            _, _, record, extra = heapq.heappop(self.pending)
            self.stats.records += 1
            self.stats.physical_lines += 1 + extra
            out.append(record)
        return out

    def flush(self) -> list[list[str]]:
        return self._due(None)


def _segments(start_id: int, n: int) -> list[tuple[int, int]]:
    """(first id, titles) of the segments of a catalog: each segment has its own
    defect stream, so that segments can be drawn in any order or in parallel and
    the bytes never depend on how many processes drew them."""
    return [(start_id + i, min(SEGMENT, n - i)) for i in range(0, n, SEGMENT)]


def _segment_records(
    maker: _TitleMaker, rates: Defects, seg_start: int, seg_n: int, stats: Stats,
    on_title: Optional[Callable[[Title], None]] = None,
) -> Iterator[list[str]]:
    tag = f"{maker.seed}:{maker.fmt}:catalog:{seg_start}:defects"
    records = _Records(maker, rates, tag, stats, on_title)
    title, emit = maker.title, records.emit
    for ident in range(seg_start, seg_start + seg_n):
        yield from emit(title(ident))
    stats.new_titles += seg_n
    yield from records.flush()


def _catalog_records(
    n: int,
    seed: int,
    fmt: str,
    defects: Union[Defects, float, None],
    start_id: int,
    stats: Stats,
    on_title: Optional[Callable[[Title], None]] = None,
) -> Iterator[list[str]]:
    maker = _TitleMaker(profile(fmt), seed)
    rates = _defects(defects, fmt)
    for seg_start, seg_n in _segments(start_id, n):
        yield from _segment_records(maker, rates, seg_start, seg_n, stats, on_title)


def generate_titles(
    n: int,
    seed: int,
    fmt: str = "kaggle",
    defects: Union[Defects, float, None] = None,
    start_id: int = 1,
    stats: Optional[Stats] = None,
    on_title: Optional[Callable[[Title], None]] = None,
) -> Iterator[list[str]]:
    """The CSV records (lists of strings in the format's column order, header
    excluded) of a catalog of titles `start_id .. start_id + n - 1`.

    `defects`: a `Defects` (its None fields: the observed rates), a float (every
    kind at that rate) or None (every kind at its observed rate). `stats`, if
    given, is filled as records are drawn; `on_title` sees each title as written
    (a duplicated name included; the tutorial lookup files are made from it)."""
    profile(fmt)  # fail early on an unknown format
    return _catalog_records(n, seed, fmt, defects, start_id, stats if stats is not None else Stats(fmt), on_title)


# ---------------------------------------------------------------- files


def csv_line(fields: Sequence[str]) -> str:
    """One record as csv.writer writes it (QUOTE_MINIMAL, no terminator), faster.
    The real files round-trip through csv.writer byte for byte; the tests check
    that this function writes what csv.writer writes."""
    return ",".join([
        ('"' + x.replace('"', '""') + '"') if ("," in x or '"' in x or "\n" in x or "\r" in x) else x
        for x in fields
    ])


class _Writer:
    """csv.writer's interface over `csv_line`, writing in chunks."""

    def __init__(self, f, terminator: str):
        self.f, self.terminator = f, terminator

    def writerow(self, fields: Sequence[str]) -> None:
        self.f.write(csv_line(fields) + self.terminator)

    def writerows(self, rows) -> None:
        term, write, chunk = self.terminator, self.f.write, []
        for fields in rows:
            chunk.append(",".join([
                ('"' + x.replace('"', '""') + '"') if ("," in x or '"' in x or "\n" in x or "\r" in x) else x
                for x in fields
            ]))
            if len(chunk) >= 4096:
                write(term.join(chunk) + term)
                chunk.clear()
        if chunk:
            write(term.join(chunk) + term)


def _open_csv(path: Path, fmt: SourceFormat, tutorial: bool):
    """A file written as the real ones are: tutorial UTF-8 with BOM and CRLF,
    kaggle UTF-8 with LF and no BOM; minimal quoting."""
    f = open(path, "w", encoding="utf-8", newline="", buffering=1 << 20)
    if tutorial:
        f.write("\ufeff")
    writer = _Writer(f, "\r\n" if tutorial else "\n")
    writer.writerow(fmt.columns)
    return f, writer


class _Buckets:
    """Lookup rows by list position, one temporary file per position, so that a
    lookup file can be written in the real files' order: every title's first
    value (titles in file order), then every title's second value, and so on."""

    SPILL_ROWS = 1 << 15  # lines held in memory, all positions together

    def __init__(self, tmp: Path, stem: str):
        self.tmp, self.stem = tmp, stem
        self.files: list = []
        self.chunks: list[list[str]] = []  # lines not yet written, per position
        self.rows = 0
        self.held = 0

    def add(self, values: Sequence[str], sid: str) -> None:
        chunks = self.chunks
        while len(chunks) < len(values):
            name = self.tmp / f"{self.stem}.{len(chunks):04d}"
            self.files.append(open(name, "w", encoding="utf-8", newline="", buffering=1 << 16))
            chunks.append([])
        for chunk, value in zip(chunks, values):
            chunk.append(csv_line((value, sid)) if ("," in value or '"' in value) else f"{value},{sid}")
        self.rows += len(values)
        self.held += len(values)
        if self.held >= self.SPILL_ROWS:
            self._spill()

    def _spill(self) -> None:
        for f, chunk in zip(self.files, self.chunks):
            if chunk:
                f.write("\r\n".join(chunk) + "\r\n")
                chunk.clear()
        self.held = 0

    def close(self) -> list[str]:
        """The files of positions 0, 1, ..."""
        self._spill()
        for f in self.files:
            f.close()
        return [f.name for f in self.files]


def _assemble_lookup(path: Path, fmt: SourceFormat, parts: Sequence[Sequence[str]]) -> None:
    """Header, then position 0 of every segment's buckets, position 1, ... (parts:
    per segment, in title order, its bucket files by position); removes them."""
    out, _ = _open_csv(path, fmt, tutorial=True)
    with out:
        for position in range(max((len(p) for p in parts), default=0)):
            for segment in parts:
                if position < len(segment):
                    with open(segment[position], encoding="utf-8", newline="") as part:
                        shutil.copyfileobj(part, out, 1 << 20)
                    os.unlink(segment[position])


def _lookup_sink(buckets: dict[str, _Buckets]) -> Callable[[Title], None]:
    cast, genres, countries, directors = (buckets[k] for k in ("cast", "genres", "countries", "directors"))

    def on_title(t: Title) -> None:
        cast.add(t.cast, t.show_id)
        genres.add(t.genres, t.show_id)
        countries.add(t.countries, t.show_id)
        directors.add(t.directors, t.show_id)

    return on_title


def _merge(total: Stats, part: Stats) -> None:
    total.titles += part.titles
    total.new_titles += part.new_titles
    total.records += part.records
    total.physical_lines += part.physical_lines
    total.defects.update(part.defects)
    for attr, pick in (("first_id", min), ("last_id", max)):
        values = [v for v in (getattr(total, attr), getattr(part, attr)) if v is not None]
        setattr(total, attr, pick(values) if values else None)


def _pool_context():
    """Worker processes for `jobs` > 1. Not "fork": forking a multi-threaded parent (a test session
    with a JVM gateway and its threads) can leave a child waiting for ever on a lock held at the
    fork (a CI run hung 17 min on a worker in futex_wait). A forkserver forks from a clean process."""
    import multiprocessing

    return multiprocessing.get_context(
        "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    )


def _write_segment(job: tuple) -> tuple[Stats, str, dict[str, tuple[list[str], int]]]:
    """One segment drawn into temporary files (a worker process of write_catalog)."""
    seed, fmt, rates, seg_start, seg_n, tmp = job
    tmp = Path(tmp)
    maker = _TitleMaker(profile(fmt), seed)
    stats = Stats(fmt)
    tutorial = fmt == "tutorial"
    buckets = {kind: _Buckets(tmp, f"{kind}.{seg_start:014d}") for _, _, kind in LOOKUP_FILES} if tutorial else {}
    part = tmp / f"titles.{seg_start:014d}"
    with open(part, "w", encoding="utf-8", newline="", buffering=1 << 20) as f:
        _Writer(f, "\r\n" if tutorial else "\n").writerows(
            _segment_records(maker, rates, seg_start, seg_n, stats, _lookup_sink(buckets) if buckets else None))
    return stats, str(part), {kind: (b.close(), b.rows) for kind, b in buckets.items()}


def write_catalog(
    path: Union[str, Path],
    n: int,
    seed: int,
    fmt: str = "kaggle",
    defects: Union[Defects, float, None] = None,
    start_id: int = 1,
    lookup_dir: Union[str, Path, None] = None,
    jobs: int = 1,
) -> Stats:
    """Write a catalog of `n` titles (ids `start_id ..`) to `path`, streamed in
    constant memory. For the tutorial format, also the four lookup files
    (netflix_cast/category/countries/directors.csv, `<value>,show_id`, BOM and
    CRLF) in `lookup_dir` (default: the titles file's folder), made from the same
    titles; a broken title keeps its lookup rows, as in the real data.

    `jobs` > 1 draws segments of SEGMENT titles in that many processes (into
    temporary files next to `path`, then concatenated): same bytes as jobs=1."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prof = profile(fmt)
    rates = _defects(defects, fmt)
    stats = Stats(fmt, path=str(path))
    tutorial = fmt == "tutorial"
    folder = Path(lookup_dir) if lookup_dir is not None else path.parent
    if tutorial:
        folder.mkdir(parents=True, exist_ok=True)
    segments = _segments(start_id, n)
    tmp = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=folder if tutorial else path.parent))
    try:
        f, writer = _open_csv(path, FORMATS[fmt], tutorial)
        with f:
            if jobs <= 1 or len(segments) <= 1:
                buckets = {kind: _Buckets(tmp, kind) for _, _, kind in LOOKUP_FILES} if tutorial else {}
                maker = _TitleMaker(prof, seed)
                on_title = _lookup_sink(buckets) if tutorial else None
                for seg_start, seg_n in segments:
                    writer.writerows(_segment_records(maker, rates, seg_start, seg_n, stats, on_title))
                parts = {kind: [b.close()] for kind, b in buckets.items()}
                rows = {kind: b.rows for kind, b in buckets.items()}
            else:
                context = _pool_context()
                parts = {kind: [] for _, _, kind in LOOKUP_FILES} if tutorial else {}
                rows = dict.fromkeys(parts, 0)
                tasks = [(seed, fmt, rates, seg_start, seg_n, str(tmp)) for seg_start, seg_n in segments]
                with context.Pool(min(jobs, len(segments))) as pool:
                    for part_stats, part, lookup_parts in pool.imap(_write_segment, tasks):
                        with open(part, encoding="utf-8", newline="") as src:
                            shutil.copyfileobj(src, f, 1 << 20)
                        os.unlink(part)
                        _merge(stats, part_stats)
                        for kind, (files, count) in lookup_parts.items():
                            parts[kind].append(files)
                            rows[kind] += count
        for name, lf, kind in LOOKUP_FILES if tutorial else ():
            _assemble_lookup(folder / name, lf, parts[kind])
            stats.lookup_rows[str(folder / name)] = rows[kind]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return stats


def incremental_files(
    directory: Union[str, Path],
    k: int,
    rows_per_file: int,
    seed: int,
    fmt: str = "kaggle",
    update_fraction: float = 0.3,
    *,
    base_titles: int = 0,
    start_id: int = 1,
    defects: Union[Defects, float, None] = None,
    prefix: str = "netflix_titles_incr",
    jobs: int = 1,
) -> list[Stats]:
    """Write `k` titles files `<prefix>_0001.csv ..` to `directory`, in the order a
    landing zone would receive them. Each holds `rows_per_file` titles:
    round(rows_per_file * update_fraction) updates of distinct titles already
    emitted (the base catalog `start_id .. start_id + base_titles - 1`, i.e. what
    `write_catalog(n=base_titles, seed, fmt, start_id)` wrote, and the earlier
    files' new titles; fewer if fewer exist) and new titles with fresh ids, mixed
    in a seeded order. An update keeps show_id, type, title and people and changes
    at least one of date_added, rating, description. Defects as in `write_catalog`.
    Returns each file's `Stats` (`updated_ids`, `first_id`..`last_id` of the new).

    A file depends only on its number and the first id of its new titles, which the
    counts alone give: `jobs` > 1 writes the files in that many processes, same bytes."""
    if not 0.0 <= update_fraction <= 1.0:
        raise ValueError("update_fraction must be within [0, 1]")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rates = _defects(defects, fmt)
    tasks, next_id = [], start_id + base_titles
    for j in range(1, k + 1):
        n_upd = min(next_id - start_id, round(rows_per_file * update_fraction))
        tasks.append((str(directory / f"{prefix}_{j:04d}.csv"), seed, fmt, rates, start_id, base_titles, j, next_id,
                      n_upd, rows_per_file - n_upd))
        next_id += rows_per_file - n_upd
    if jobs <= 1 or k <= 1:
        return [_write_incremental_file(task) for task in tasks]
    with _pool_context().Pool(min(jobs, k)) as pool:
        return pool.map(_write_incremental_file, tasks, chunksize=max(1, k // (4 * jobs)))


@functools.lru_cache(maxsize=4)
def _maker(fmt: str, seed: int) -> "_TitleMaker":
    """One maker per process and seed: it reseeds itself per title, so sharing it changes nothing."""
    return _TitleMaker(profile(fmt), seed)


def _write_incremental_file(task: tuple) -> Stats:
    """File `j` of `incremental_files`: n_upd updates of ids below `first_new`, n_new new titles from it."""
    path, seed, fmt, rates, start_id, base_titles, j, first_new, n_upd, n_new = task
    maker = _maker(fmt, seed)
    tag = f"{seed}:{fmt}:incremental:{start_id}:{base_titles}:{j}"
    frng = random.Random(tag)
    updated = frng.sample(range(start_id, first_new), n_upd)
    slots = [True] * n_upd + [False] * n_new
    frng.shuffle(slots)
    stats = Stats(fmt, path=path, updated_ids=sorted(updated))
    records = _Records(maker, rates, tag + ":defects", stats)

    def titles() -> Iterator[Title]:
        pending, next_id = iter(updated), first_new
        for is_update in slots:
            if is_update:
                changed, fields = maker.update(maker.title(next(pending)), frng.random)
                stats.updated_titles += 1
                stats.changes.update(fields)
                yield changed
            else:
                stats.new_titles += 1
                yield maker.title(next_id)
                next_id += 1

    f, writer = _open_csv(Path(path), FORMATS[fmt], fmt == "tutorial")
    with f:
        for t in titles():
            writer.writerows(records.emit(t))
        writer.writerows(records.flush())
    if n_new:
        stats.first_id, stats.last_id = first_new, first_new + n_new - 1
    else:
        stats.first_id = stats.last_id = None
    return stats


# ---------------------------------------------------------------- CLI


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _size(path: Union[str, Path]) -> str:
    return f"{os.path.getsize(path) / 1e6:,.1f} MB"


def _describe(stats: Stats) -> str:
    parts = [f"{stats.titles:,} titles ({stats.new_titles:,} new, {stats.updated_titles:,} updates)",
             f"{stats.records:,} records", f"{stats.physical_lines:,} lines"]
    defects = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.defects.items()) if v)
    parts.append(f"defects: {defects or 'none'}")
    return "; ".join(parts)


def _parse_defects(args) -> Union[Defects, None]:
    if args.no_defects:
        base = Defects.none()
    elif args.defect_rate is not None:
        base = Defects.uniform(args.defect_rate)
    else:
        base = Defects()
    overrides = {}
    for item in args.defect or []:
        kind, _, rate = item.partition("=")
        if kind not in Defects.kinds():
            raise SystemExit(f"unknown defect kind {kind!r}: one of {', '.join(Defects.kinds())}")
        overrides[kind] = float(rate)
    return dataclasses.replace(base, **overrides)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--titles", type=int, default=100_000, help="titles of the base catalog (0: none)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="kaggle")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--start-id", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="processes drawing the catalog (same bytes for any)")
    parser.add_argument("--incremental", type=int, default=0, metavar="K", help="also write K incremental files")
    parser.add_argument("--rows-per-file", type=int, default=1000)
    parser.add_argument("--update-fraction", type=float, default=0.3)
    parser.add_argument("--no-defects", action="store_true", help="every defect rate 0 (then --defect)")
    parser.add_argument("--defect-rate", type=float, help="every defect kind at this rate")
    parser.add_argument("--defect", action="append", metavar="KIND=RATE",
                        help=f"one kind's rate (repeatable): {', '.join(Defects.kinds())}")
    args = parser.parse_args(argv)
    defects = _parse_defects(args)
    out = Path(args.out)

    started = time.perf_counter()
    prof = profile(args.format)
    learned = time.perf_counter() - started
    rates = defects.resolve(args.format)
    print(f"profile: {args.format} from {prof.source} ({prof.real_titles:,} real titles) in {learned:.2f} s")
    print("defect rates: " + ", ".join(f"{k} {v:.5f}" for k, v in rates.as_dict().items()))
    if args.titles:
        t0 = time.perf_counter()
        stats = write_catalog(out / "netflix_titles.csv", args.titles, args.seed, args.format, defects, args.start_id,
                              jobs=args.jobs)
        seconds = time.perf_counter() - t0
        print(f"wrote {stats.path} ({_size(stats.path)}): {_describe(stats)}")
        for name, rows in stats.lookup_rows.items():
            print(f"wrote {name} ({_size(name)}): {rows:,} rows")
        print(f"catalog: {seconds:.1f} s, {args.titles / seconds:,.0f} titles/s")
    if args.incremental:
        t0 = time.perf_counter()
        files = incremental_files(out / "incremental", args.incremental, args.rows_per_file, args.seed, args.format,
                                  args.update_fraction, base_titles=args.titles, start_id=args.start_id,
                                  defects=defects)
        seconds = time.perf_counter() - t0
        for stats in files:
            print(f"wrote {stats.path} ({_size(stats.path)}): {_describe(stats)}")
        print(f"incremental: {len(files)} files in {seconds:.1f} s")
    print(f"total {time.perf_counter() - started:.1f} s, peak RSS {_peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
