"""The synthetic catalog generator (benchmarks/synthetic.py): determinism, files the
project's own parser reads exactly as announced, distributions close to the real
data, defect rates, incremental files and tutorial lookups. No Spark."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import re
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import synthetic as syn
from netflix_assets.transforms.csv_records import parse_records
from netflix_assets.transforms.formats import KAGGLE, LOOKUPS, TITLE_FORMATS, TUTORIAL

from netflix_assets_tests.conftest import KAGGLE_TITLES, TUTORIAL_DIR

TYPES = ("Movie", "TV Show")
LOOKUP_FORMATS = {lookup.file_name: lookup.format for lookup in LOOKUPS.values()}
REAL_TITLES = {"kaggle": KAGGLE_TITLES, "tutorial": TUTORIAL_DIR / "netflix_titles.csv"}


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.csv"))}


def _parse(path, formats=TITLE_FORMATS):
    return list(parse_records(lambda: open(path, "rb"), formats))


def _classify(records) -> Counter:
    """What silver.classify_titles decides, in plain Python: the first failing rule,
    then duplicates of show_id (the latest record wins)."""
    out, seen = Counter(), set()
    for rec in reversed(records):
        assert rec.reject_reason is None
        sid = (rec.values.get("show_id") or "").strip()
        if rec.rescued is not None:
            out["malformed_record"] += 1
        elif not sid:
            out["missing_show_id"] += 1
        elif (rec.values.get("type") or "").strip() not in TYPES:
            out["bad_type"] += 1
        elif sid in seen:
            out["duplicate"] += 1
        else:
            seen.add(sid)
            out["accepted"] += 1
    out["records"] = len(records)
    return out


def _real_rows(fmt: str) -> list[dict]:
    with open(REAL_TITLES[fmt], encoding="utf-8-sig", newline="") as f:
        return [r for r in csv.DictReader(f) if (r["show_id"] or "").strip() and r["type"] in TYPES]


def _good(records) -> list[dict]:
    """Values of the well-formed records, one per show_id (duplicates are exact copies)."""
    by_id = {r.values["show_id"]: r.values for r in records
             if r.rescued is None and (r.values["show_id"] or "").strip()}
    return list(by_id.values())


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("fmt", ["kaggle", "tutorial"])
def test_same_seed_same_bytes_and_other_seed_other_bytes(tmp_path, fmt):
    defects = syn.Defects.uniform(0.01)
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        syn.write_catalog(tmp_path / name / "netflix_titles.csv", 1500, seed, fmt, defects)
        syn.incremental_files(tmp_path / name / "incr", 2, 200, seed, fmt, 0.3, base_titles=1500, defects=defects)
    a, b, c = (_digest(tmp_path / name) for name in "abc")
    expected = {"netflix_titles.csv", "netflix_titles_incr_0001.csv", "netflix_titles_incr_0002.csv"}
    if fmt == "tutorial":
        expected |= set(LOOKUP_FORMATS)
    assert set(a) == expected
    assert a == b
    assert all(a[name] != c[name] for name in a)


def test_titles_do_not_depend_on_catalog_size_or_defect_rates():
    clean = syn.Defects.none()
    small = list(syn.generate_titles(300, 5, "kaggle", clean))
    big = list(syn.generate_titles(1000, 5, "kaggle", clean))
    assert big[:300] == small
    # Defects move fields around but draw no title differently.
    dirty = list(syn.generate_titles(300, 5, "kaggle", dataclasses.replace(clean, leading_space=0.5)))
    assert [r[:6] + r[7:] for r in dirty] == [r[:6] + r[7:] for r in small]
    assert [r[6].strip() for r in dirty] == [r[6] for r in small]


def test_csv_line_writes_what_csv_writer_writes():
    rows = list(syn.generate_titles(3000, 9, "kaggle", syn.Defects.uniform(0.05)))
    rows += list(syn.generate_titles(3000, 9, "tutorial", syn.Defects.uniform(0.05)))
    with open(KAGGLE_TITLES, encoding="utf-8", newline="") as f:
        rows += list(csv.reader(f))
    rows.append(["", 'a "b"', "c,d", "e\nf", "g\r\nh", " i "])
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    assert "".join(syn.csv_line(r) + "\n" for r in rows) == out.getvalue()


# ---------------------------------------------------------------- the project's parser


@pytest.mark.parametrize("fmt", ["kaggle", "tutorial"])
def test_parser_finds_the_announced_good_and_defect_records(tmp_path, fmt):
    path = tmp_path / "netflix_titles.csv"
    stats = syn.write_catalog(path, 4000, 21, fmt, syn.Defects.uniform(0.02))
    raw = path.read_bytes()
    if fmt == "tutorial":
        assert raw.startswith(b"\xef\xbb\xbf" + ",".join(TUTORIAL.columns).encode() + b"\r\n")
        # CRLF ends every record; the quoted newlines inside fields are the multiline ones.
        assert raw.count(b"\r\n") == stats.records + 1
    else:
        assert raw.startswith(",".join(KAGGLE.columns).encode() + b"\n") and b"\r" not in raw
    with open(path, encoding="utf-8-sig", newline="") as f:
        assert sum(1 for _ in f) == stats.physical_lines + 1

    records = _parse(path)
    assert {r.source_format for r in records} == {fmt}
    assert _classify(records) == {k: v for k, v in stats.expected.items() if v}
    assert stats.expected["accepted"] == 4000 - stats.defects["broken"]
    assert stats.expected["records"] == 4000 + stats.defects["broken"] + stats.defects["duplicate"]
    # Line numbers: a record with a quoted newline takes two physical lines.
    for a, b in zip(records, records[1:]):
        assert b.line - a.line == 1 + sum(v.count("\n") for v in a.values.values() if v)

    # Every defect the generator announces is in the parsed file, exactly.
    good = _good(records)
    assert sum(1 for v in good if v["date_added"][:1] == " ") == stats.defects["leading_space"]
    assert sum(1 for v in good if "\n" in v["title"] + v["description"]) == stats.defects["multiline"]
    if fmt == "kaggle":
        in_rating = [v for v in good if re.fullmatch(r"[0-9]+ min", v["rating"])]
        assert len(in_rating) == stats.defects["rating_duration"]
        assert all(v["duration"] == "" and v["type"] == "Movie" for v in in_rating)
        stray = [v for v in good if v["country"][:1] == "," or v["country"][-1:] == ","]
        assert len(stray) == stats.defects["stray_comma"]
        repeated = {v["show_id"] for v in good for col in ("cast", "director")
                    if len(v[col].split(", ")) != len(set(v[col].split(", ")))}
        assert len(repeated) == stats.defects["duplicate_name"]
        broken_halves = [r for r in records if r.rescued is not None]
        assert sorted(len(next(csv.reader([r.rescued]))) for r in broken_halves[:2]) == [3, 10]
    else:
        halves = [r.values for r in records if not (r.values["show_id"] or "").strip()]
        assert len(halves) == 2 * stats.defects["broken"]
        assert all(len(v) == 9 for v in halves)
    for kind in syn.Defects.kinds():
        if kind not in ("rating_duration", "stray_comma") or fmt == "kaggle":
            assert stats.defects[kind] > 0, kind


def test_broken_tutorial_record_has_the_real_shape():
    rows = list(syn.generate_titles(3000, 4, "tutorial", syn.Defects(broken=0.01, duplicate=0.0)))
    halves = [r for r in rows if r[8] == ""]
    assert halves and len(halves) % 2 == 0
    for first, second in zip(halves[::2], halves[1::2]):
        assert rows.index(second) == rows.index(first) + 1
        assert len(first) == len(second) == 9
        assert second[0].endswith('"')  # the stray quote of the real ones: "Flying Fortress"""
        assert any(re.fullmatch(r"9[0-9]{7}", v) for v in second[1:8])  # the lost show_id, shifted left
        assert first[-1] == ""


# ---------------------------------------------------------------- distributions


@pytest.fixture(scope="module")
def generated() -> dict[str, list[dict]]:
    out = {}
    for fmt, columns in (("kaggle", KAGGLE.columns), ("tutorial", TUTORIAL.columns)):
        rows = syn.generate_titles(20_000, 3, fmt, syn.Defects.none())
        out[fmt] = [dict(zip(columns, r)) for r in rows]
    return out


@pytest.mark.parametrize("fmt", ["kaggle", "tutorial"])
def test_distributions_follow_the_real_data(generated, fmt):
    rows, real = generated[fmt], _real_rows(fmt)
    assert len(rows) == 20_000 and len({r["show_id"] for r in rows}) == 20_000

    def share(rs, pred):
        return sum(1 for r in rs if pred(r)) / len(rs)

    movie = share(rows, lambda r: r["type"] == "Movie")
    assert abs(movie - share(real, lambda r: r["type"] == "Movie")) < 0.02
    assert {r["type"] for r in rows} == set(TYPES)
    real_ratings = {r["rating"] for r in real if not re.fullmatch(r"[0-9]+ min", r["rating"])}
    assert {r["rating"] for r in rows} <= real_ratings
    for rating in ("TV-MA", "TV-14", "R"):
        assert abs(share(rows, lambda r: r["rating"] == rating) - share(real, lambda r: r["rating"] == rating)) < 0.02

    if fmt == "kaggle":
        assert all(re.fullmatch(r"[0-9]+ min", r["duration"]) for r in rows if r["type"] == "Movie")
        assert all(re.fullmatch(r"1 Season|([2-9]|[1-9][0-9]) Seasons", r["duration"])
                   for r in rows if r["type"] == "TV Show")
        minutes = [int(r["duration"].split()[0]) for r in rows if r["type"] == "Movie"]
        real_minutes = [int(r["duration"].split()[0]) for r in real if r["type"] == "Movie" and r["duration"]]
    else:
        movies = [r for r in rows if r["type"] == "Movie"]
        shows = [r for r in rows if r["type"] == "TV Show"]
        assert all(r["duration_minutes"].isdigit() and r["duration_seasons"] == "" for r in movies)
        assert all(r["duration_seasons"].isdigit() and r["duration_minutes"] == "" for r in shows)
        minutes = [int(r["duration_minutes"]) for r in rows if r["type"] == "Movie"]
        real_minutes = [int(r["duration_minutes"]) for r in real if r["type"] == "Movie"]
    dates = [syn.parse_date_added(r["date_added"]) for r in rows]
    real_dates = [syn.parse_date_added(r["date_added"]) for r in real]
    assert abs(sum(minutes) / len(minutes) - sum(real_minutes) / len(real_minutes)) < 2
    assert set(minutes) <= set(real_minutes)
    known = [d for d in dates if d is not None]
    real_known = [d for d in real_dates if d is not None]
    assert min(real_known) <= min(known) and max(known) <= max(real_known)
    assert abs(len(known) / len(dates) - len(real_known) / len(real_dates)) < 0.01
    years = [int(r["release_year"]) for r in rows]
    real_years = [int(r["release_year"]) for r in real]
    assert min(real_years) <= min(years) and max(years) <= max(real_years)
    assert abs(sum(years) / len(years) - sum(real_years) / len(real_years)) < 1
    assert len({r["title"] for r in rows}) > 0.85 * len(rows)  # one-word titles repeat
    assert len({r["description"] for r in rows}) == len(rows)


def test_kaggle_lists_follow_the_real_data(generated):
    rows, real = generated["kaggle"], _real_rows("kaggle")

    def values(rs, col):
        return [[x.strip() for x in r[col].split(",") if x.strip()] for r in rs]

    for col in ("director", "cast", "country", "listed_in"):
        gen, ref = values(rows, col), values(real, col)
        mean, real_mean = sum(map(len, gen)) / len(gen), sum(map(len, ref)) / len(ref)
        assert abs(mean - real_mean) < 0.1 * real_mean, col
        empty, real_empty = sum(1 for v in gen if not v) / len(gen), sum(1 for v in ref if not v) / len(ref)
        assert abs(empty - real_empty) < 0.02, col
        assert all(len(v) == len(set(v)) for v in gen), col  # no repeated name without the defect
    real_countries = {x for v in values(real, "country") for x in v}
    real_genres = {x for v in values(real, "listed_in") for x in v}
    assert {x for v in values(rows, "country") for x in v} <= real_countries
    assert {x for v in values(rows, "listed_in") for x in v} <= real_genres
    assert all(v == sorted(v) for v in values(rows, "listed_in"))
    # Movies get movie genres, shows get TV genres, as in the real lists.
    movie_genres = {x for r, v in zip(real, values(real, "listed_in")) if r["type"] == "Movie" for x in v}
    assert {x for r, v in zip(rows, values(rows, "listed_in")) if r["type"] == "Movie" for x in v} <= movie_genres
    # People: about as many distinct people per credit as the real data at its
    # size, and more people as the catalog grows.
    first = values(rows[:8807], "cast")
    distinct = len({x for v in first for x in v}) / sum(map(len, first))
    real_distinct = len({x for v in values(real, "cast") for x in v}) / sum(map(len, values(real, "cast")))
    assert abs(distinct - real_distinct) < 0.05
    assert len({x for v in values(rows, "cast") for x in v}) > 1.6 * len({x for v in first for x in v})


def test_observed_default_rates_are_the_real_files_rates():
    k, t = syn.Defects.observed("kaggle"), syn.Defects.observed("tutorial")
    # The figures of shared/data/README.md and docs/data-contract.md.
    assert k.leading_space == pytest.approx(88 / 8807)
    assert k.rating_duration == pytest.approx(3 / 8807)
    assert k.stray_comma == pytest.approx(7 / 8807)
    assert k.multiline == pytest.approx(2 / 8807)
    assert k.duplicate_name == pytest.approx(3 / 8807)  # 2 cast lists + 1 director list repeat a name
    assert k.broken == k.duplicate == 0
    assert t.broken == pytest.approx(2 / 6234)  # 6,232 well-formed titles + 2 broken
    assert t.duplicate_name == pytest.approx(2 / 6234)  # the exact duplicate cast row and director row
    assert t.multiline == t.leading_space == t.rating_duration == t.stray_comma == t.duplicate == 0
    assert syn.Defects().resolve("kaggle") == k
    assert syn.Defects(duplicate=0.1).resolve("tutorial") == syn.Defects(**{**t.as_dict(), "duplicate": 0.1})
    with pytest.raises(ValueError):
        syn.Defects(broken=1.5).resolve("kaggle")


@pytest.mark.parametrize("fmt", ["kaggle", "tutorial"])
def test_defect_rates_are_respected(fmt):
    n = 20_000
    rates = syn.Defects(broken=0.004, multiline=0.003, leading_space=0.02, rating_duration=0.01,
                        stray_comma=0.005, duplicate_name=0.006, duplicate=0.008)
    stats = syn.Stats(fmt)
    for _ in syn.generate_titles(n, 8, fmt, rates, stats=stats):
        pass
    for kind, rate in rates.as_dict().items():
        if fmt == "tutorial" and kind in ("rating_duration", "stray_comma"):  # kaggle-only kinds
            assert stats.defects[kind] == 0
            continue
        expected = rate * n
        assert abs(stats.defects[kind] - expected) < 4 * expected ** 0.5 + 2, (kind, stats.defects[kind], expected)
    # The observed rates by default.
    observed = syn.Stats(fmt)
    for _ in syn.generate_titles(n, 8, fmt, stats=observed):
        pass
    for kind, rate in syn.Defects.observed(fmt).as_dict().items():
        expected = rate * n
        assert abs(observed.defects[kind] - expected) < 4 * expected ** 0.5 + 2, kind


# ---------------------------------------------------------------- incremental files


@pytest.mark.parametrize("fmt", ["kaggle", "tutorial"])
def test_incremental_files_mix_updates_and_new_titles(tmp_path, fmt):
    base = {r[KAGGLE.columns.index("show_id") if fmt == "kaggle" else 8]: r
            for r in syn.generate_titles(300, 13, fmt, syn.Defects.none())}
    files = syn.incremental_files(tmp_path, 4, 200, 13, fmt, 0.25, base_titles=300, defects=syn.Defects.none())
    columns = syn.FORMATS[fmt].columns
    emitted = {syn.show_id(fmt, i): base[syn.show_id(fmt, i)] for i in range(1, 301)}
    for stats in files:
        records = _parse(stats.path)
        assert _classify(records) == {"accepted": 200, "records": 200}
        rows = [dict(zip(columns, (r.values[c] for c in columns))) for r in records]
        ids = [r["show_id"] for r in rows]
        updates = [r for r in rows if r["show_id"] in emitted]
        new = [r for r in rows if r["show_id"] not in emitted]
        assert len(updates) == stats.updated_titles == 50 and len(new) == stats.new_titles == 150
        assert sorted(syn.show_id(fmt, i) for i in stats.updated_ids) == sorted(r["show_id"] for r in updates)
        assert [r["show_id"] for r in new] == [syn.show_id(fmt, i) for i in range(stats.first_id, stats.last_id + 1)]
        assert len(set(ids)) == 200
        # Updates and new titles are interleaved, not in two blocks.
        positions = [i for i, sid in enumerate(ids) if sid in emitted]
        assert positions[0] < 150 and positions[-1] > 50
        for r in updates:
            old = dict(zip(columns, emitted[r["show_id"]]))
            assert (r["type"], r["title"]) == (old["type"], old["title"])
            assert (r["date_added"], r["rating"], r["description"]) != (old["date_added"], old["rating"],
                                                                        old["description"])
            if fmt == "kaggle":
                assert (r["cast"], r["director"], r["listed_in"]) == (old["cast"], old["director"], old["listed_in"])
        emitted.update({r["show_id"]: [r[c] for c in columns] for r in new})
        assert sum(stats.changes.values()) >= len(updates)
    # Later files also update the titles earlier files added.
    assert any(i > 300 for i in files[-1].updated_ids)


def test_incremental_files_are_the_same_bytes_in_parallel(tmp_path):
    def written(jobs: int):
        folder = tmp_path / f"jobs{jobs}"
        stats = syn.incremental_files(folder, 6, 150, 5, "kaggle", 0.4, base_titles=50, defects=0.01, jobs=jobs)
        return ({p.name: p.read_bytes() for p in sorted(folder.glob("*.csv"))},
                [(s.updated_ids, s.first_id, s.last_id, s.new_titles, s.updated_titles, dict(s.defects)) for s in stats])

    one, two = written(1), written(2)
    assert len(one[0]) == 6 and one == two


def test_first_incremental_file_without_a_base_is_all_new(tmp_path):
    files = syn.incremental_files(tmp_path, 2, 100, 1, "kaggle", 0.5, defects=syn.Defects.none())
    assert (files[0].updated_titles, files[0].new_titles) == (0, 100)
    assert (files[1].updated_titles, files[1].new_titles) == (50, 50)
    assert all(1 <= i <= 100 for i in files[1].updated_ids)


# ---------------------------------------------------------------- tutorial lookups


def test_tutorial_lookup_files_reference_only_generated_titles(tmp_path):
    stats = syn.write_catalog(tmp_path / "netflix_titles.csv", 3000, 17, "tutorial",
                              syn.Defects(broken=0.005, duplicate_name=0.01))
    titles = [r.values for r in _parse(tmp_path / "netflix_titles.csv")]
    generated = {syn.show_id("tutorial", i) for i in range(1, 3001)}
    assert {v["show_id"] for v in titles if v["show_id"]} <= generated
    duplicates = 0
    for name, fmt in LOOKUP_FORMATS.items():
        path = tmp_path / name
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf" + ",".join(fmt.columns).encode() + b"\r\n")
        assert raw.count(b"\n") == raw.count(b"\r\n")
        records = _parse(path, (fmt,))
        assert all(r.source_format == fmt.name and r.rescued is None for r in records)
        assert len(records) == stats.lookup_rows[str(path)]
        ids = [r.values["show_id"] for r in records]
        assert set(ids) <= generated
        assert all(r.values[fmt.columns[0]].strip() for r in records)
        pairs = Counter((r.values[fmt.columns[0]], r.values["show_id"]) for r in records)
        duplicates += sum(c - 1 for c in pairs.values())
        # Position-major like the real files: each title's first value, then each title's second...
        first_ids = ids[: len(set(ids))]
        assert len(set(first_ids)) == len(first_ids) and first_ids == sorted(first_ids, key=int)
    assert duplicates == stats.defects["duplicate_name"] > 0
    # Broken titles keep their lookup rows, as in the real data.
    with open(tmp_path / "netflix_category.csv", encoding="utf-8-sig", newline="") as f:
        category_ids = {row["show_id"] for row in csv.DictReader(f)}
    assert category_ids == generated
    assert len({v["show_id"] for v in titles if v["show_id"]}) == 3000 - stats.defects["broken"]


# ---------------------------------------------------------------- CLI


def test_cli_writes_catalog_and_incremental_files(tmp_path, capsys):
    assert syn.main(["--titles", "500", "--format", "kaggle", "--seed", "7", "--out", str(tmp_path),
                     "--incremental", "2", "--rows-per-file", "50", "--defect", "duplicate=0.01"]) == 0
    out = capsys.readouterr().out
    assert "netflix_titles.csv" in out and "netflix_titles_incr_0002.csv" in out and "peak RSS" in out
    assert sorted(p.name for p in tmp_path.rglob("*.csv")) == [
        "netflix_titles.csv", "netflix_titles_incr_0001.csv", "netflix_titles_incr_0002.csv"]
    records = _parse(tmp_path / "netflix_titles.csv")
    assert _classify(records)["accepted"] == 500


@pytest.mark.parametrize("fmt", ["kaggle", "tutorial"])
def test_parallel_jobs_write_the_same_bytes(tmp_path, monkeypatch, fmt):
    monkeypatch.setattr(syn, "SEGMENT", 700)  # several segments in a small catalog
    defects = syn.Defects.uniform(0.01)
    one = syn.write_catalog(tmp_path / "one" / "netflix_titles.csv", 2500, 4, fmt, defects)
    two = syn.write_catalog(tmp_path / "two" / "netflix_titles.csv", 2500, 4, fmt, defects, jobs=2)
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")
    assert one.expected == two.expected and one.defects == two.defects
    assert (one.first_id, one.last_id, one.titles) == (two.first_id, two.last_id, two.titles) == (1, 2500, 2500)
    assert [Path(p).name for p in one.lookup_rows] == [Path(p).name for p in two.lookup_rows]
    assert list(one.lookup_rows.values()) == list(two.lookup_rows.values())
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".synthetic")]
