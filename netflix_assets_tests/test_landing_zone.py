"""The landing-zone resource on local disk and on Azure Blob (a real Azurite)."""

import os

import dagster as dg
import pytest

from netflix_assets.resources.landing import LandingZoneResource, OutsideLandingZone

from .conftest import TUTORIAL_DIR


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
    files = zone.list_files()
    assert [f.uri for f in files] == sorted([a, b])
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
