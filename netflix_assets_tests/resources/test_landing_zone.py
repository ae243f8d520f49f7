"""The landing-zone resource on local disk and on Azure Blob (a real Azurite)."""

import os

import dagster as dg
import fsspec
import pytest

from netflix_assets.bronze.ledger import INVALID_NAME, status_code
from netflix_assets.resources.landing import LandingZoneResource, OutsideLandingZone

from netflix_assets_tests.conftest import TUTORIAL_DIR


def azure_zone(azurite, monkeypatch, container: str, prefix: str = "raw/netflix_titles", **kwargs) -> LandingZoneResource:
    """A landing zone configured the production way: from environment variables (dg.EnvVar)."""
    from adlfs import AzureBlobFileSystem

    for name, value in azurite.env(container, prefix).items():
        monkeypatch.setenv(name, value)
    # As Dagster builds it for a run: EnvVars resolved from the environment.
    zone = LandingZoneResource.from_env("unused", **kwargs).process_config_and_initialize()
    AzureBlobFileSystem(**zone.storage_options()).mkdir(container)
    return zone


@pytest.fixture(params=["local", "azurite"])
def zone(request, tmp_path, monkeypatch):
    if request.param == "local":
        return LandingZoneResource(uri=str(tmp_path / "landing"))
    azurite = request.getfixturevalue("azurite")
    return azure_zone(azurite, monkeypatch, f"zone{abs(hash(tmp_path)) % 10**8}")


def test_lists_nested_csv_files_and_skips_files_still_being_written(zone, tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x\n1\n")
    assert zone.list_files() == []
    a = zone.put_file(str(source), "a.csv")
    b = zone.put_file(str(source), "2026/11/b.csv")
    zone.put_file(str(source), "c.csv.part")
    zone.put_file(str(source), "_tmp_d.csv")
    zone.put_file(str(source), "notes.txt")
    # Complete names that only contain a marker: listed, never skipped without a word.
    c = zone.put_file(str(source), "titles.part1.csv")
    d = zone.put_file(str(source), "netflix.tmpl.csv")
    files = zone.list_files()
    assert [f.uri for f in files] == sorted([a, b, c, d])
    assert all(f.size == 4 and f.modified is not None for f in files)
    assert zone.exists(a) and zone.require_inside(a) == a


def test_a_name_escaping_the_zone_is_refused(zone, tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x\n1\n")
    for name in ("../escape.csv", "sub/../../escape.csv", "/etc/escape.csv"):
        with pytest.raises(OutsideLandingZone):
            zone.put_file(str(source), name)
    landed = zone.put_file(str(source), "a.csv")
    with pytest.raises(OutsideLandingZone):
        zone.require_inside(landed.rsplit("/", 1)[0] + "/../../outside.csv")
    assert zone.list_files()[0].uri == landed


def test_a_symlink_pointing_outside_the_local_zone_is_reported_not_listed(tmp_path):
    zone = LandingZoneResource(uri=str(tmp_path / "landing"))
    secret = tmp_path / "secret.csv"
    secret.write_text("not yours\n")
    (tmp_path / "landing").mkdir()
    os.symlink(secret, tmp_path / "landing" / "link.csv")
    landed, escaped = zone.scan()
    assert landed == [] and escaped == [f"file://{tmp_path}/landing/link.csv"]


def test_azure_settings_come_from_environment_variables(azurite, monkeypatch):
    zone = azure_zone(azurite, monkeypatch, "envcheck")
    assert zone.account_key == azurite.account_key
    declared = LandingZoneResource.from_env("unused")
    # What Dagster stores and shows is the variable's name, never the key.
    assert declared.account_key == dg.EnvVar("NETFLIX_LANDING_ACCOUNT_KEY")
    assert azurite.account_key not in str(declared.model_dump())


def test_production_style_options_without_an_endpoint():
    zone = LandingZoneResource(uri="abfss://raw@myaccount.dfs.core.windows.net/netflix_titles", sas_token="sv=x")
    assert zone.storage_options() == {"account_name": "myaccount", "sas_token": "sv=x"}
    assert LandingZoneResource(uri=str(TUTORIAL_DIR)).storage_options() == {}


# ------------------------------------------------------------ odd names

# name -> expected status code on (local disk, Azure Blob); None: listed as is, and read back
# by its URI with fsspec (as bronze reads it).
ODD_NAMES = {
    "q?x.csv": (None, None),
    "h#x.csv": (None, None),
    "a#b?c.csv": (None, None),
    "100% real.csv": (None, None),
    "p%20x.csv": (None, None),
    " lead.csv": (None, None),
    "trail .csv": (None, None),
    "trail.csv ": (None, None),
    "star*[1].csv": (None, None),
    "é ü 😀.csv": (None, None),
    ("n" * 246) + ".csv": (None, None),  # 250 bytes (a local name holds at most 255)
    "dir #%/x.csv": (None, None),
    "dir?x#y/a.csv": (None, INVALID_NAME),  # a folder is listed by prefix on Azure: its files are found
    "dir\nline/a.csv": (None, INVALID_NAME),
    "dir\nline2/a.csv": (None, INVALID_NAME),
    "dir::x/a.csv": (INVALID_NAME, INVALID_NAME),
    # adlfs parses `?...#` as a query and a fragment, and Python's urlsplit drops tab, CR and LF.
    "a?x#y.csv": (None, INVALID_NAME),
    "new\nline.csv": (None, INVALID_NAME),
    "tab\tx.csv": (None, INVALID_NAME),
    # fsspec reads `::` as a chain of URLs, on every store.
    "a::b.csv": (INVALID_NAME, INVALID_NAME),
}


def land_raw(zone: LandingZoneResource, name, data: bytes) -> None:
    """Land a file the way another client would (os calls, the Azure SDK): any name, no fsspec."""
    if zone.protocol == "file":
        path = os.path.join(os.fsencode(zone.uri), os.fsencode(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        return
    from azure.storage.blob import ContainerClient

    container, prefix = zone.uri.split("://", 1)[1].split("/", 1)
    client = ContainerClient.from_connection_string(zone.storage_options()["connection_string"], container)
    client.upload_blob(f"{prefix}/{name}", data, overwrite=True)


def zone_prefix(zone: LandingZoneResource) -> str:
    fs, root = zone.filesystem()
    return fs.unstrip_protocol(root)


def test_every_odd_name_is_listed_and_read_back_or_flagged(zone, request):
    store = 0 if zone.protocol == "file" else 1
    expected = {f"{zone_prefix(zone)}/{name}": codes[store] for name, codes in ODD_NAMES.items()}
    contents = {}
    for i, name in enumerate(ODD_NAMES):
        contents[f"{zone_prefix(zone)}/{name}"] = f"x\n{i}\n".encode()
        land_raw(zone, name, contents[f"{zone_prefix(zone)}/{name}"])
    if store == 0:
        # A Latin-1 name from an NFS or Windows export: not valid UTF-8 (Azure cannot hold one).
        land_raw(zone, b"caf\xe9.csv", b"x\n1\n")
        expected[f"{zone_prefix(zone)}/caf\\xe9.csv"] = INVALID_NAME

    landed, escaped = zone.scan()
    assert escaped == []
    got = {f.uri: status_code(f.problem) for f in landed}
    assert got == expected
    for f in landed:
        f.uri.encode("utf-8")  # valid Unicode, whatever the name on disk
        if f.problem is None:
            with fsspec.open(f.uri, "rb", **zone.storage_options()) as handle:
                assert handle.read() == contents[f.uri], f.uri
            assert f.size == len(contents[f.uri])
        else:
            assert f.problem.split(":", 1)[1].strip(), f"{f.uri!r}: {f.problem!r} says why"
        # What the sensor requests, bronze takes back unchanged.
        assert zone.require_inside(f.uri) == f.uri


def test_put_file_lands_names_with_glob_characters_as_given(zone, tmp_path):
    source = tmp_path / "a.csv"
    source.write_text("x\n1\n")
    names = ["q?x.csv", "star*x.csv", "brk[1].csv", "dir?q/x.csv"]
    landed = [zone.put_file(str(source), name) for name in names]
    assert landed == [f"{zone_prefix(zone)}/{name}" for name in names]
    assert sorted(f.uri for f in zone.list_files()) == sorted(landed)
    if zone.protocol != "file":
        with pytest.raises(ValueError, match="cannot be addressed"):
            zone.put_file(str(source), "a?x#y.csv")


def test_the_listing_never_enters_the_archive_or_hidden_folders(zone, tmp_path, monkeypatch):
    for name in ("a.csv", "2026/11/b.csv", "_archive/2026-11-01/old.csv", "_temporary/0/c.csv", ".hidden/d.csv"):
        land_raw(zone, name, b"x\n1\n")
    fs, root = zone.filesystem()
    listed = []
    for method in ("ls", "find"):
        original = getattr(fs, method)
        monkeypatch.setattr(fs, method, lambda path, *a, _original=original, **k: listed.append(path) or _original(path, *a, **k))
    assert [f.uri for f in zone.list_files()] == [f"{zone_prefix(zone)}/2026/11/b.csv", f"{zone_prefix(zone)}/a.csv"]
    assert listed and not [p for p in listed if "/_" in p[len(root) :] or "/." in p[len(root) :]], listed
