"""The gold model of one partition maintained from a change (`transforms/maintain.py`) against its
rebuild, both written to Delta as the assets write them, on a lake `make bench` built.

    python -m benchmarks.model_from_changes [--lake .bench/lake_pipeline_1m] [--titles 1000] [--new-share 0.7] [--rounds 2]

A change of `--titles` random titles (a new file updating them: rating and description; with
`--new-share`, that share of them landed as new titles instead: copies under new show_ids and
titles, with their lists) is applied to the partition's gold snapshot; then, on a fresh copy of the
lake's gold tables each time, the model's 17 tables are rebuilt from the changed snapshot (one
`replaceWhere` of the whole partition each, each table computed from its inputs as stored, as the
assets read them), or maintained from the change (`maintain_all`: each table's replacement written
with the predicate of the rows it replaces, its change read back from the two table versions, as a
change data feed gives it). The modes alternate; one JSON line per run, the last maintained run's
seconds per table (its rule's own Spark jobs before the write, then the write), and whether the two
results are the same rows. Nothing else should run beside it. Figures: BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=ROOT / ".bench" / "lake_pipeline_1m")
    parser.add_argument("--titles", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--new-share", type=float, default=0.0)
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from netflix_assets.lib.delta import PARTITION_COLUMN, commit_metadata, write_partitions
    from netflix_assets.resources.spark import get_or_create_session
    from netflix_assets.transforms import dimensional as d
    from netflix_assets.transforms import identity as ident
    from netflix_assets.transforms import kpis as k
    from netflix_assets.transforms import maintain as m

    spark = get_or_create_session()
    gold = args.lake / "gold"

    def read(root: Path, name: str, day: dt.date, version: int | None = None):
        reader = spark.read.format("delta")
        reader = reader if version is None else reader.option("versionAsOf", version)
        return reader.load(str(root / name)).where(F.col(PARTITION_COLUMN) == F.lit(day))

    day = spark.read.format("delta").load(str(gold / "netflix_titles")).agg(F.max(PARTITION_COLUMN)).first()[0]
    snapshot_names = {name: f"netflix_{name}" for name in m.SNAPSHOT}
    before = {name: read(gold, table, day) for name, table in snapshot_names.items()}
    chosen = [r["show_id"] for r in before["titles"].select("show_id").orderBy(F.xxhash64("show_id")).limit(args.titles).collect()]
    copied, changed = chosen[:round(len(chosen) * args.new_share)], chosen[round(len(chosen) * args.new_share):]
    edited = F.col("show_id").isin(changed)
    after = dict(before)
    after["titles"] = before["titles"].withColumn("rating", F.when(edited, F.lit("TV-14")).otherwise(F.col("rating"))) \
        .withColumn("description", F.when(edited, F.concat("description", F.lit(" (updated)"))).otherwise(F.col("description")))
    for name, df in after.items():
        # New titles: their own identity blocks (a new title), their lists copied under the new show_id.
        new = df.where(F.col("show_id").isin(copied)).withColumn("show_id", F.concat(F.lit("new-"), "show_id"))
        after[name] = df.unionByName(new.withColumn("title", F.concat("title", F.lit(" (new)"))) if name == "titles" else new)
    # The changed snapshot as files, read back as the assets read gold: not local checkpoints, which
    # hold a million titles in the driver's heap.
    scratch = Path(tempfile.mkdtemp(prefix="model_from_changes_snapshot_"))
    for name, df in after.items():
        df.write.parquet(str(scratch / name))
    after = {name: spark.read.parquet(str(scratch / name)) for name in after}
    is_new = F.col("show_id").startswith("new-")
    changes = {name: m.Change(before[name].where(edited), after[name].where(edited | is_new)) if name == "titles"
               else m.Change(before[name].limit(0), after[name].where(is_new)) for name in m.SNAPSHOT}
    model = list(m.build(**after))
    end = day + dt.timedelta(days=1)

    def fresh_copy() -> Path:
        root = Path(tempfile.mkdtemp(prefix="model_from_changes_"))
        for name in model:
            shutil.copytree(gold / name, root / name)
        return root

    def rebuild(root: Path) -> None:
        # As the assets rebuild it: each table from its inputs as stored (read back from Delta), the
        # identity's scored pairs persisted once for its two outputs. Writing `m.build`'s DataFrames
        # instead is one lazy plan per table, each computing the identity's self-join again: a rebuild
        # 1.6-3.6x slower than the assets' (BENCHMARKS.md, the gold model from changes).
        written = []

        def put(name: str, df) -> None:
            write_partitions(df, str(root / name), day, end)
            written.append(name)

        t = after
        pairs = ident.scored_pairs(t["titles"], t["cast"], t["directors"]).persist()
        try:
            put("title_source_ids", ident.source_ids(t["titles"], pairs))
            put("title_match_review", ident.review(pairs))
        finally:
            pairs.unpersist()
        ids = read(root, "title_source_ids", day)
        put("dim_title", d.dim_title(t["titles"], ids))
        put("dim_person", d.dim_person(t["cast"], t["directors"]))
        put("dim_country", d.dim_value(t["countries"], "country", "country"))
        put("dim_genre", d.dim_value(t["category"], "category", "genre"))
        put("dim_date", d.dim_date(t["titles"]))
        put("bridge_title_person", d.bridge_title_person(t["cast"], t["directors"], ids))
        put("bridge_title_country", d.bridge_title_value(t["countries"], "country", "country", ids))
        put("bridge_title_genre", d.bridge_title_value(t["category"], "category", "genre", ids))
        put("fact_title_added", d.fact_title_added(t["titles"], ids))
        s = {name: read(root, name, day) for name in ("dim_title", "dim_person", "dim_country", "dim_genre",
                                                      "bridge_title_person", "bridge_title_country",
                                                      "bridge_title_genre", "fact_title_added")}
        fact = s["fact_title_added"]
        for name, df in {
            "kpi_titles_added_by_month": k.kpi_titles_added_by_month(fact),
            "kpi_top_countries": k.kpi_top_countries(s["bridge_title_country"], s["dim_country"], fact),
            "kpi_genre_by_year": k.kpi_genre_by_year(s["bridge_title_genre"], s["dim_genre"], fact),
            "kpi_rating_mix": k.kpi_rating_mix(s["dim_title"]),
            "kpi_top_people": k.kpi_top_people(s["bridge_title_person"], s["dim_person"], fact),
            "kpi_movie_minutes_by_decade": k.kpi_movie_minutes_by_decade(fact),
        }.items():
            put(name, df)
        assert sorted(written) == sorted(model), f"the rebuild wrote {sorted(written)}, the model is {sorted(model)}"

    steps: list[dict] = []

    def maintain(root: Path) -> None:
        steps.clear()
        clock = [time.perf_counter()]

        def store(name: str, replacement: m.Replacement, table):
            # Between two stores: the rule's own Spark jobs (its affected keys); then the write.
            started = time.perf_counter()
            whole = replacement.where == m.WHOLE
            marker = write_partitions(replacement.rows, str(root / name), day, end, None if whole else replacement.where)
            version = commit_metadata(spark, str(root / name), marker=marker).get("delta_version")
            new = read(root, name, day)
            if version is None:  # nothing to add or remove: Delta committed nothing
                change = m.Change(new.limit(0), new.limit(0))
            else:
                old = read(root, name, day, version - 1)
                change = m.Change(old, new) if whole else m.Change(old.where(replacement.where), new.where(replacement.where))
            clock.append(time.perf_counter())
            steps.append({"table": name, "rule_s": round(started - clock[-2], 1), "write_s": round(clock[-1] - started, 1),
                          "predicate_chars": len(replacement.where)})
            return new, change

        stored = {name: read(root, name, day) for name in model}
        m.maintain_all({**after, **stored}, changes, store)

    results = {}
    for round_ in range(args.rounds):
        for mode, run in (("rebuild", rebuild), ("maintained", maintain)):
            root = fresh_copy()
            started = time.perf_counter()
            run(root)
            seconds = time.perf_counter() - started
            print(json.dumps({"round": round_ + 1, "mode": mode, "titles_updated": len(changed), "titles_new": len(copied),
                              "seconds": round(seconds, 1)}), flush=True)
            if round_ == args.rounds - 1:
                results[mode] = root
            else:
                shutil.rmtree(root)
    print(json.dumps({"maintained_by_table": steps}))
    same = all(read(results["rebuild"], name, day).exceptAll(read(results["maintained"], name, day)).isEmpty()
               and read(results["maintained"], name, day).exceptAll(read(results["rebuild"], name, day)).isEmpty()
               for name in model)
    print(json.dumps({"same_rows": same}))
    for root in (*results.values(), scratch):
        shutil.rmtree(root)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
