"""A conformed title identity across sources: one `title_key` per real title.

The two export formats the contract accepts describe the same catalogue under different keys (the
tutorial export's Netflix ids, Kaggle's s1..s8807), so landing both would count most titles twice.
Measured on the bundled files (stdlib count, the pairs below): of the tutorial's 6,236 titles,
6,185 have a Kaggle title of the same type and normalised title; for 6,094 of those pairs the two
descriptions are (nearly) the same text, and in the 96 pairs where neither the description nor a
person agrees the two are different works that share a title ('Love' 2015 vs 'Love' 2020, 'The
Karate Kid' 2010 vs 1984). Title alone is no identity: within the tutorial file 36 titles share
type and title with a different work. Hence the rule, evidence first:

- candidates: a title of one source format and a title of another with the same `type` and the
  same normalised title (`normalised_title`); within one format a show_id is its own title.
- `description`: the two descriptions' word sets overlap by Jaccard >= 0.8 (score: the Jaccard).
  A synopsis is written per work, so two works rarely share one; it also matches a TV show whose
  release_year moved with a new season (Kaggle gives the latest season's year).
- `people_and_year`: same release_year and at least one cast member or director in common (score:
  the shared people over the smaller cast), for the ~40 pairs whose synopsis was rewritten.
- a pair passing a rule is merged only when neither side has another passing candidate; otherwise
  every competing pair goes to review (`several_candidates`), as does a pair with the same
  release_year and no other evidence whose titles are both unmerged (`title_and_year_only`):
  never merged silently.

Identity: `title_key = xxhash64(show_id)` of the group's first-ingested member (by each member's
first record: gold titles' `_first_ingested`), so a title keeps its key when a second source
arrives later, and when either export delivers it again (by current versions, a re-delivery of
the first member made the other one first: the key moved, and moved back). The group's attributes
come from its last-ingested member (the representative: the most recent export wins, as within
one source). With the two
formats the contract accepts, a group holds at most one show_id per format: a pair.
"""

from __future__ import annotations

import itertools
import unicodedata
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from .formats import TITLE_FORMATS
from .gold import FIRST_INGESTED, ORDER  # ingest order (silver's LATEST_FIRST), a show_id's first place in it

DESCRIPTION_MIN_JACCARD = 0.8
NO_MATCH = "no_match"
# The titles' columns the identity reads: a title changed elsewhere (rating, duration) keeps its match.
TITLE_COLUMNS = ("show_id", "_source_format", "type", "title", "release_year", "description", "ingest_date", *ORDER)

REVIEW_COLUMNS = ["show_id", "candidate_show_id", "source_format", "candidate_source_format", "type", "title",
                  "release_year", "candidate_release_year", "description_similarity", "shared_people", "reason"]


def _fold_table() -> tuple[str, str]:
    """Latin letters with diacritics -> their base letter (the NFD decomposition without its marks),
    as `translate` arguments: Spark SQL has no Unicode normalisation function."""
    src, dst = [], []
    for code in [*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00)]:
        ch = chr(code)
        if ch != ch.lower():
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if len(base) == 1 and base != ch:
            src.append(ch)
            dst.append(base)
    return "".join(src), "".join(dst)


_FOLD_FROM, _FOLD_TO = _fold_table()


def normalised(text: Column) -> Column:
    """Lower case, Latin diacritics folded, '&' read as 'and', every run of characters other than
    letters and digits (of any script) one space, trimmed: 'Amélie' = 'AMELIE', 'Blood & Water' =
    'Blood and Water', 'Spider-Man: Far' = 'spider man far'."""
    folded = F.translate(F.lower(text), _FOLD_FROM, _FOLD_TO)
    spaced = F.regexp_replace(F.regexp_replace(folded, "&", " and "), r"[^\p{L}\p{N}]+", " ")
    return F.trim(spaced)


def _words(text: Column) -> Column:
    return F.array_remove(F.array_distinct(F.split(normalised(F.coalesce(text, F.lit(""))), " ")), "")


def jaccard(a: Column, b: Column) -> Column:
    """|A n B| / |A u B| of two word arrays (0 when both are empty)."""
    union = F.size(F.array_union(a, b))
    return F.when(union == 0, F.lit(0.0)).otherwise(F.size(F.array_intersect(a, b)) / union)


def _people(cast: DataFrame, directors: DataFrame, of: DataFrame) -> DataFrame:
    """(show_id, person): everyone credited on the titles `of` (show_id), case folded."""
    names = cast.select("show_id", F.col("cast_name").alias("n")).unionByName(
        directors.select("show_id", F.col("director_name").alias("n"))).join(of, "show_id", "left_semi")
    return names.select("show_id", F.lower(F.trim("n")).alias("person")).where(F.col("person") != "").distinct()


def candidate_pairs(titles: DataFrame, cast: DataFrame, directors: DataFrame) -> DataFrame:
    """Every pair (a, b) of titles of two source formats (a's format < b's) with the same type and
    normalised title, with its evidence: description_similarity, shared_people, smaller_cast,
    year_equal."""
    base = titles.select(*TITLE_COLUMNS).select(
        "show_id", F.col("_source_format").alias("fmt"), "type", "title", "release_year", "description",
        normalised(F.col("title")).alias("norm_title"), "ingest_date",
    ).where(F.col("norm_title") != "")
    def side(prefix: str, fmt: str) -> DataFrame:
        return base.where(F.col("fmt") == fmt).select(*[F.col(c).alias(f"{prefix}_{c}") for c in base.columns])

    # One equi-join per pair of formats: a condition `a_fmt < b_fmt` inside one self-join would first
    # pair every title with every same-titled title of its own format (quadratic in a popular title).
    joins = [side("a", fa).join(side("b", fb), (F.col("a_type") == F.col("b_type"))
                                & (F.col("a_norm_title") == F.col("b_norm_title")))
             for fa, fb in itertools.combinations(sorted(f.name for f in TITLE_FORMATS), 2)]
    pairs = reduce(DataFrame.unionByName, joins)
    # Credits and descriptions are read for the candidates only (a few thousand of a million titles).
    candidates = pairs.select(F.col("a_show_id").alias("show_id")).unionByName(
        pairs.select(F.col("b_show_id").alias("show_id")))
    people = _people(cast, directors, candidates)
    credits = people.groupBy("show_id").agg(F.count(F.lit(1)).alias("credits"))
    shared = (
        pairs.select("a_show_id", "b_show_id")
        .join(people.withColumnRenamed("show_id", "a_show_id"), "a_show_id")
        .join(people.withColumnRenamed("show_id", "b_show_id"), ["b_show_id", "person"])
        .groupBy("a_show_id", "b_show_id").agg(F.count(F.lit(1)).alias("shared_people"))
    )
    ca = credits.select(F.col("show_id").alias("a_show_id"), F.col("credits").alias("a_credits"))
    cb = credits.select(F.col("show_id").alias("b_show_id"), F.col("credits").alias("b_credits"))
    return (
        pairs.join(shared, ["a_show_id", "b_show_id"], "left").join(ca, "a_show_id", "left").join(cb, "b_show_id", "left")
        .select(
            "a_show_id", "b_show_id", "a_fmt", "b_fmt", F.col("a_type").alias("type"), F.col("a_title").alias("title"),
            "a_release_year", "b_release_year", F.col("a_ingest_date").alias("ingest_date"),
            F.round(jaccard(_words(F.col("a_description")), _words(F.col("b_description"))), 6)
            .alias("description_similarity"),
            F.coalesce("shared_people", F.lit(0)).cast("int").alias("shared_people"),
            F.least(F.coalesce("a_credits", F.lit(0)), F.coalesce("b_credits", F.lit(0))).alias("smaller_cast"),
            F.coalesce(F.col("a_release_year") == F.col("b_release_year"), F.lit(False)).alias("year_equal"),
        )
    )


def _rule() -> tuple[Column, Column]:
    """(match_rule, match_score) of a candidate pair; rule null when no rule holds."""
    by_description = F.col("description_similarity") >= DESCRIPTION_MIN_JACCARD
    by_people = F.col("year_equal") & (F.col("shared_people") > 0)
    rule = F.when(by_description, "description").when(by_people, "people_and_year")
    score = F.when(by_description, F.col("description_similarity")).when(
        by_people, F.round(F.col("shared_people") / F.col("smaller_cast"), 6))
    return rule, score


def scored_pairs(titles: DataFrame, cast: DataFrame, directors: DataFrame) -> DataFrame:
    """The candidate pairs with `match_rule`/`match_score` (null when no rule holds) and `rivals`: how
    many passing pairs the busier side is in (1 = an unambiguous match; 0 when the pair fails)."""
    rule, score = _rule()
    pairs = candidate_pairs(titles, cast, directors).withColumn("match_rule", rule).withColumn("match_score", score)
    passing = F.col("match_rule").isNotNull()
    one = F.when(passing, 1)
    per_a = Window.partitionBy("a_show_id", "b_fmt")
    per_b = Window.partitionBy("b_show_id", "a_fmt")
    return pairs.withColumn("rivals", F.when(passing, F.greatest(F.count(one).over(per_a), F.count(one).over(per_b)))
                            .otherwise(0))


def source_ids(titles: DataFrame, pairs: DataFrame) -> DataFrame:
    """gold/title_source_ids: one row per show_id of the snapshot, with its title_key and match evidence."""
    return _source_ids(titles, pairs.where(F.col("rivals") == 1))


def review(pairs: DataFrame) -> DataFrame:
    """gold/title_match_review: the pairs a rule accepts but a rival contests (`several_candidates`),
    and the pairs with the same type, title and release_year and no other evidence
    (`title_and_year_only`) of which neither title is merged already, each with its evidence
    (REVIEW_COLUMNS). On the bundled files, every same-year pair without evidence had both titles
    merged with their real counterparts (two 'Veronica's of 2017 in each export): not a question."""
    merged = pairs.where(F.col("rivals") == 1)
    merged_ids = merged.select(F.col("a_show_id").alias("id")).unionByName(merged.select(F.col("b_show_id").alias("id")))
    reason = F.when(F.col("rivals") > 1, "several_candidates").when(
        F.col("match_rule").isNull() & F.col("year_equal"), "title_and_year_only")
    flagged = pairs.withColumn("reason", reason).where(F.col("reason").isNotNull())
    for side in ("a_show_id", "b_show_id"):
        flagged = flagged.join(merged_ids.withColumnRenamed("id", side), side, "left_anti")
    return flagged.select(
        F.col("a_show_id").alias("show_id"), F.col("b_show_id").alias("candidate_show_id"),
        F.col("a_fmt").alias("source_format"), F.col("b_fmt").alias("candidate_source_format"), "type", "title",
        F.col("a_release_year").alias("release_year"), F.col("b_release_year").alias("candidate_release_year"),
        "description_similarity", "shared_people", "reason", "ingest_date",
    )


def match(titles: DataFrame, cast: DataFrame, directors: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(title_source_ids, title_match_review) of a gold titles snapshot and its cast and directors."""
    pairs = scored_pairs(titles, cast, directors)
    return source_ids(titles, pairs), review(pairs)


def _source_ids(titles: DataFrame, merged: DataFrame) -> DataFrame:
    """One row per show_id: its title_key (xxhash64 of the group's show_id first ingested), whether it
    is the group's representative (last ingested: by current versions) and the evidence of its match.
    A title without `_first_ingested` (hand-made; null in a partition written before the column
    existed) is first where its current version is."""
    order = F.struct(*ORDER)
    first = F.coalesce(F.col(FIRST_INGESTED), order) if FIRST_INGESTED in titles.columns else order
    members = titles.select("show_id", F.col("_source_format").alias("source_format"), "type",
                            F.struct(*ORDER).alias("order"), first.alias("first"), "ingest_date")
    edges = merged.select(F.col("a_show_id").alias("show_id"), F.col("b_show_id").alias("matched_show_id"),
                          "match_rule", "match_score").unionByName(
        merged.select(F.col("b_show_id").alias("show_id"), F.col("a_show_id").alias("matched_show_id"),
                      "match_rule", "match_score"))
    partner = members.select(F.col("show_id").alias("matched_show_id"), F.col("order").alias("matched_order"),
                             F.col("first").alias("matched_first"))
    ids = members.join(edges, "show_id", "left").join(partner, "matched_show_id", "left")
    alone = F.col("matched_show_id").isNull()
    first = alone | (F.col("first") < F.col("matched_first"))
    return ids.select(
        F.xxhash64(F.when(first, F.col("show_id")).otherwise(F.col("matched_show_id"))).alias("title_key"),
        "show_id", "source_format", "type",
        (alone | (F.col("order") > F.col("matched_order"))).alias("is_representative"),
        F.coalesce("match_rule", F.lit(NO_MATCH)).alias("match_rule"), "match_score", "matched_show_id", "ingest_date",
    )
