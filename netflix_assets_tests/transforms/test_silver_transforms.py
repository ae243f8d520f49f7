"""Silver rules of the contract on small hand-made DataFrames (no Dagster)."""

import datetime as dt

from netflix_assets.transforms import silver as t

from netflix_assets.transforms.formats import COUNTRIES, LOOKUPS

from netflix_assets_tests.frames import T0, bronze_lookup, bronze_titles


def _tutorial(show_id="81145628", **kw):
    row = {
        "duration_minutes": "90", "duration_seasons": "", "type": "Movie", "title": "Norm of the North: King Sized",
        "date_added": "9/9/2019", "release_year": "2019", "rating": "TV-PG", "description": "A polar bear.",
        "show_id": show_id,
    }
    row.update(kw)
    return row


def _kaggle(show_id="s1", **kw):
    row = {
        "show_id": show_id, "type": "Movie", "title": "Dick Johnson Is Dead", "director": "Kirsten Johnson",
        "cast": "", "country": "United States", "date_added": "September 25, 2021", "release_year": "2020",
        "rating": "PG-13", "duration": "90 min", "listed_in": "Documentaries", "description": "d",
        "_source_format": "kaggle",
    }
    row.update(kw)
    return row


def _silver(spark, rows):
    classified = t.classify_titles(bronze_titles(spark, rows))
    silver = {r["show_id"]: r for r in t.silver_titles(classified).collect()}
    refused = {(r["_source_line"], r["_reason"]) for r in t.refused(classified).collect()}
    return silver, refused


def test_typed_columns_and_original_rules(spark):
    silver, refused = _silver(spark, [
        _tutorial(" 81145628 ", title="  Norm of the North: King Sized ", rating=" TV-MA "),
        _tutorial("2", type="TV Show", duration_minutes="", duration_seasons="3", rating="PG-13", date_added="12/31/2018"),
        _tutorial("3", rating="TV-Y7-FV", duration_minutes="", date_added="not a date"),
    ])
    assert refused == set()
    a = silver["81145628"]
    assert (a["title"], a["short_title"]) == ("Norm of the North: King Sized", "Norm of the North")
    assert (a["rating"], a["rating_group"], a["type_flag"]) == ("TV-MA", "TV", 1)
    assert (a["duration_minutes"], a["duration_seasons"], a["release_year"]) == (90, 1, 2019)
    assert a["date_added"] == dt.date(2019, 9, 9)
    b = silver["2"]
    assert (b["type_flag"], b["duration_minutes"], b["duration_seasons"], b["rating_group"]) == (2, 0, 3, "PG")
    assert b["date_added"] == dt.date(2018, 12, 31)
    c = silver["3"]
    assert (c["rating_group"], c["duration_minutes"], c["date_added"]) == ("TV", 0, None)


def test_kaggle_dates_with_leading_space_durations_and_rating_holding_a_duration(spark):
    silver, refused = _silver(spark, [
        _kaggle("s1", date_added=" August 4, 2017"),
        _kaggle("s2", type="TV Show", duration="2 Seasons"),
        _kaggle("s3", type="TV Show", duration="1 Season", date_added=""),
        _kaggle("s5542", rating="74 min", duration=""),
    ])
    assert refused == set()
    assert silver["s1"]["date_added"] == dt.date(2017, 8, 4)
    assert (silver["s1"]["duration_minutes"], silver["s1"]["duration_seasons"]) == (90, 1)
    assert (silver["s2"]["duration_minutes"], silver["s2"]["duration_seasons"]) == (0, 2)
    assert silver["s3"]["duration_seasons"] == 1 and silver["s3"]["date_added"] is None
    assert (silver["s5542"]["rating"], silver["s5542"]["rating_group"], silver["s5542"]["duration_minutes"]) == (None, None, 74)


def test_broken_records_missing_show_id_bad_type_and_malformed_go_to_quarantine(spark):
    # The two real broken tutorial records, as their four physical lines parse.
    silver, refused = _silver(spark, [
        _tutorial("", duration_minutes="40", title="The Memphis Belle: A Story of a", date_added="", release_year="",
                  rating="", description=""),
        {"duration_minutes": 'Flying Fortress"', "duration_seasons": "3/31/2017", "type": "1944", "title": "TV-PG",
         "date_added": "This documentary", "release_year": "80119194", "rating": "", "description": "", "show_id": ""},
        _tutorial("7", type="Documentary"),
        _tutorial("8", _rescued_data="90,,Movie,T,9/9/2019,2019,TV-PG,d,8,EXTRA"),
        _tutorial("9"),
    ])
    assert set(silver) == {"9"}
    assert refused == {(2, t.MISSING_SHOW_ID), (3, t.MISSING_SHOW_ID), (4, t.BAD_TYPE), (5, t.MALFORMED)}


def test_dedup_latest_record_wins_and_the_others_are_quarantined_as_duplicates(spark):
    later = T0 + dt.timedelta(hours=1)
    silver, refused = _silver(spark, [
        _tutorial("1", title="old", _ingested_at=T0),
        _tutorial("1", title="new", _ingested_at=later),                                  # latest _ingested_at
        _tutorial("2", title="a-file", _source_file="file:///landing/a.csv"),
        _tutorial("2", title="b-file", _source_file="file:///landing/b.csv"),            # latest file name
        _tutorial("3", title="line 8"),
        _tutorial("3", title="line 9"),                                                   # highest line
    ])
    assert {k: v["title"] for k, v in silver.items()} == {"1": "new", "2": "b-file", "3": "line 9"}
    assert sorted(reason for _, reason in refused) == [t.DUPLICATE] * 3


def test_invalid_row_never_supersedes_a_valid_one(spark):
    silver, refused = _silver(spark, [_tutorial("1", title="good"), _tutorial("1", type="???", title="bad")])
    assert silver["1"]["title"] == "good" and {r for _, r in refused} == {t.BAD_TYPE}


def test_lookup_values_trimmed_empties_quarantined_pairs_deduplicated(spark):
    cast = LOOKUPS["netflix_cast"]
    bronze = bronze_lookup(spark, [("1", " Alan Marriott"), ("1", "Alan Marriott"), ("1", ""), ("", "Nobody"), ("2", "Ann")])
    titles = bronze_titles(spark, [])
    classified = t.classify_lookup(t.lookup_candidates(cast, bronze, titles))
    silver = sorted((r["show_id"], r["cast_name"]) for r in t.silver_lookup(cast, classified).collect())
    reasons = sorted(r["_reason"] for r in t.quarantine_lookup(cast, classified).collect())
    assert silver == [("1", "Alan Marriott"), ("2", "Ann")]
    assert reasons == sorted([t.DUPLICATE, t.EMPTY_VALUE, t.MISSING_SHOW_ID])


def test_kaggle_lists_feed_the_lookups_and_stray_commas_are_quarantined(spark):
    countries = LOOKUPS["netflix_countries"]
    titles = bronze_titles(spark, [
        _kaggle("s1", country="United States, India"),
        _kaggle("s2", country=", France"),       # stray leading comma (real defect)
        _kaggle("s3", country=""),               # no country: no rows at all
    ])
    classified = t.classify_lookup(t.lookup_candidates(countries, bronze_lookup(spark, [], COUNTRIES), titles))
    silver = sorted((r["show_id"], r["country"]) for r in t.silver_lookup(countries, classified).collect())
    assert silver == [("s1", "India"), ("s1", "United States"), ("s2", "France")]
    assert [r["_reason"] for r in t.quarantine_lookup(countries, classified).collect()] == [t.EMPTY_VALUE]


def test_a_kaggle_list_is_its_latest_accepted_records_only(spark):
    # s10's later file drops Bob and India: silver keeps Ann and Cat, none of the older list.
    # A record silver refuses (bad type) gives no values either. Every row is still counted.
    cast = LOOKUPS["netflix_cast"]
    titles = bronze_titles(spark, [
        _kaggle("s10", cast="Ann, Bob", _source_file="file:///landing/k_v1.csv"),
        _kaggle("s10", cast="Ann, Cat", _source_file="file:///landing/k_v2.csv"),
        _kaggle("s11", cast="Dee", type="Film"),
    ])
    bronze = bronze_lookup(spark, [])
    classified = t.classify_lookup(t.lookup_candidates(cast, bronze, titles))
    silver = sorted((r["show_id"], r["cast_name"]) for r in t.silver_lookup(cast, classified).collect())
    assert silver == [("s10", "Ann"), ("s10", "Cat")]
    refused = sorted((r["show_id"], r["cast_name"], r["_reason"]) for r in t.quarantine_lookup(cast, classified).collect())
    assert refused == [("s10", " Bob", t.DUPLICATE), ("s10", "Ann", t.DUPLICATE), ("s11", "Dee", t.BAD_TYPE)]
    assert t.TITLE_REASON not in t.quarantine_lookup(cast, classified).columns
    assert _total(t.lookup_candidate_counts(cast, bronze, titles)) == len(silver) + len(refused)


def _total(counts) -> int:
    """The reconciliation's input rows: the per-file counts summed."""
    return sum(r["rows"] for r in counts.collect())


def test_the_reconciliation_counts_the_candidates_without_exploding_the_lists(spark):
    countries = LOOKUPS["netflix_countries"]
    titles = bronze_titles(spark, [
        _kaggle("s1", country="United States, India"),
        _kaggle("s2", country=", France,"),      # blank elements count: they go to quarantine
        _kaggle("s3", country="  "),             # a blank list yields no rows
        _kaggle("s4", country="Spain", _rescued_data="s4,broken"),  # malformed: not read for lists
        _tutorial("5"),
    ])
    for lookup_file in ([], [("9", "Chile"), ("9", "")]):
        bronze = bronze_lookup(spark, lookup_file, COUNTRIES)
        expected = t.lookup_candidates(countries, bronze, titles).count()
        assert _total(t.lookup_candidate_counts(countries, bronze, titles)) == expected == 5 + len(lookup_file)
    empty = bronze_titles(spark, [])
    assert _total(t.lookup_candidate_counts(countries, bronze_lookup(spark, [], COUNTRIES), empty)) == 0
