"""Every `dg.Failure` the product raises names what failed (file, table, partition) and what to
do about it: one test per class of failure (audit: `grep -rn "dg.Failure(" netflix_assets`)."""

import dagster as dg
import pytest

from netflix_assets.bronze.assets import _check_lookup_file
from netflix_assets.bronze.batch import files_changed, files_gone
from netflix_assets.transforms.formats import LOOKUPS
from netflix_assets.io_managers.delta import SparkDeltaIOManager
from netflix_assets.lib.checks import TableReader
from netflix_assets.resources.lake import LakeResource
from netflix_assets.resources.spark import SparkResource


@pytest.mark.parametrize(
    "content, reason",
    [(b"who,what\n1,2\n", "unknown header 'who,what'"), (b"show_id,cast\n1,caf\xe9\n", "refused (not_utf8")],
)
def test_a_refused_lookup_file_names_the_file_and_how_to_load_it_again(tmp_path, content, reason):
    bad = tmp_path / "cast.csv"
    bad.write_bytes(content)
    with pytest.raises(dg.Failure) as failure:
        _check_lookup_file(str(bad), LOOKUPS["netflix_cast"].format, {})
    message = failure.value.description
    assert message.startswith(f"{bad}: refused (") and reason in message, message
    assert "Fix the file where the HTTP source serves it" in message and "materialize this partition's raw pull" in message


def test_files_gone_from_the_landing_zone_are_named_with_where_to_put_them_back():
    message = files_gone("2026-12-03", ["a.csv", "sub/b.csv"], "file:///lake/raw/netflix_titles").description
    assert "partition 2026-12-03: 2 file(s)" in message and "a.csv, sub/b.csv" in message, message
    assert "file:///lake/raw/netflix_titles" in message and "Put them back under the same names" in message


def test_files_changed_since_they_were_read_are_named_with_what_to_do():
    message = files_changed("2026-12-03", ["a.csv"], "file:///lake/raw/netflix_titles").description
    assert "partition 2026-12-03: 1 file(s) of its ledger hold other bytes" in message and "a.csv." in message, message
    assert "land a new version under a new name" in message and "put the bytes that were read back" in message


def test_a_table_not_materialized_yet_is_named_with_its_path_and_the_remedy(spark, tmp_path):
    lake = LakeResource(root=str(tmp_path / "lake"))
    io = SparkDeltaIOManager(lake=lake, spark=SparkResource())
    with pytest.raises(dg.Failure) as failure:
        io.load_input(dg.build_input_context(asset_key=dg.AssetKey(["silver", "netflix_titles"])))
    assert "silver/netflix_titles has no Delta table at " in failure.value.description
    assert "materialize it first" in failure.value.description
    with pytest.raises(dg.Failure) as failure:
        TableReader(SparkResource(), lake).table(["gold", "dim_title"])
    assert f"gold/dim_title has no Delta table yet at {lake.table_uri('gold', 'dim_title')}" in failure.value.description
    assert "materialize it for this partition" in failure.value.description


def test_a_lookup_copy_changed_since_its_pull_is_named_with_what_to_do(tmp_path):
    import hashlib

    copy = tmp_path / "netflix_cast.csv"
    copy.write_bytes(b"show_id,cast\ns1,Alice\n")
    with pytest.raises(dg.Failure) as failure:
        _check_lookup_file(str(copy), LOOKUPS["netflix_cast"].format, {}, hashlib.sha256(b"what the pull read").hexdigest())
    message = failure.value.description
    assert message.startswith(f"{copy}: holds other bytes than its pull recorded"), message
    assert "Materialize this partition's raw pull again, then this bronze table" in message


def test_a_lookup_copy_is_hashed_whole_in_the_read_that_scans_it(tmp_path):
    import hashlib

    from netflix_assets.transforms.csv_records import CHUNK_BYTES, NUL_BYTES, scan_file

    # A NUL byte in the first chunk stops the scan's decoding, not the hash: the copy's own
    # hash holds, so it is refused for its bytes, not as another pull's copy.
    content = b"show_id,cast\ns1,\x00Alice\n" + b"s2,Bob\n" * (CHUNK_BYTES // 7 + 1)
    copy = tmp_path / "netflix_cast.csv"
    copy.write_bytes(content)
    digest = hashlib.sha256()
    assert scan_file(lambda: open(copy, "rb"), digest=digest) == NUL_BYTES
    assert digest.hexdigest() == hashlib.sha256(content).hexdigest()
    with pytest.raises(dg.Failure) as failure:
        _check_lookup_file(str(copy), LOOKUPS["netflix_cast"].format, {}, hashlib.sha256(content).hexdigest())
    assert NUL_BYTES in failure.value.description and "other bytes" not in failure.value.description
