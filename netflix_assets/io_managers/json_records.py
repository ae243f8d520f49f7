"""Small JSON-serialisable outputs (the pull records) as JSON files in the lake.

Why not a pickle IO manager: unpickling runs whatever code the file names, so
anyone who can write `<lake>/_dagster_io/` (a storage key, a SAS, a compromised
producer with write access to the container) would run code in the run worker
and on the Databricks cluster. A record is a small dict of strings, numbers and
booleans: JSON holds it, and `json.load` only ever builds data.

Layout: one file per asset key and partition,
`<lake>/_dagster_io/<key path>/<partition>.json` (`<key path>.json` when the
asset is not partitioned), through fsspec with the lake's storage options, so
the same code writes local disk and `abfss://`. Only names ending in `.json`
are ever opened: the extension-less files the former pickle IO managers left
at `<lake>/_dagster_io/<key path>/<partition>` are never read.
"""

import json
import posixpath
import urllib.parse
import uuid
from typing import Any

import dagster as dg

from ..resources.lake import LakeResource

# The resource key of this IO manager, wired per deployment in deployments.py: the pull
# records of the lookup pulls `raw/<dataset>` (bronze/assets.py names the key as a string literal).
JSON_IO_MANAGER_KEY = "json_io_manager"
IO_FOLDER = "_dagster_io"
SUFFIX = ".json"


def _segment(name: str) -> str:
    """`name` as one path segment: a key part or partition key holding `/` or `..` stays in its folder."""
    quoted = urllib.parse.quote(name, safe="-_.=+,@")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


class JsonRecordsIOManager(dg.ConfigurableIOManager):
    """Stores an output with `json.dump` and loads it with `json.load`: never pickle.

    For small records only (each is read whole into memory); an output that JSON
    cannot hold (a datetime, bytes, a DataFrame) fails the step with a TypeError
    naming the asset, rather than being stored in some other form.
    """

    lake: dg.ResourceDependency[LakeResource]

    def _base(self) -> str:
        return f"{self.lake.root_uri}/{IO_FOLDER}"

    def uri_for(self, key: dg.AssetKey, partition: str | None = None) -> str:
        parts = [_segment(p) for p in key.path]
        if partition is None:
            return f"{self._base()}/{'/'.join(parts)}{SUFFIX}"
        return f"{self._base()}/{'/'.join(parts)}/{_segment(partition)}{SUFFIX}"

    def _fs(self, uri: str):
        import fsspec

        return fsspec.core.url_to_fs(uri, **self.lake.storage_options())

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        key = context.asset_key
        partitions = sorted(context.asset_partition_keys) if context.has_asset_partitions else [None]
        if len(partitions) != 1:
            # One record per partition: a step writing several partitions at once is not what this stores.
            raise ValueError(f"{key.to_user_string()}: JSON records are stored one partition at a time, got {partitions}")
        try:
            text = json.dumps(obj, indent=1, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{key.to_user_string()}: output is not JSON-serialisable ({err})") from None
        uri = self.uri_for(key, partitions[0])
        fs, path = self._fs(uri)
        write_atomically(fs, path, text.encode("utf-8"))
        context.add_output_metadata({"path": dg.MetadataValue.path(uri)})

    def load_input(self, context: dg.InputContext) -> Any:
        key = context.asset_key
        if not context.has_asset_partitions:
            return self._load(self.uri_for(key))
        partitions = context.asset_partition_keys
        if len(partitions) == 1:
            return self._load(self.uri_for(key, partitions[0]))
        return {partition: self._load(self.uri_for(key, partition)) for partition in partitions}

    def _load(self, uri: str) -> Any:
        if not uri.endswith(SUFFIX):  # `uri_for` always adds it: never open anything else
            raise ValueError(f"refusing to load {uri}: not a {SUFFIX} file")
        fs, path = self._fs(uri)
        try:
            with fs.open(path, "rb") as handle:
                return json.load(handle)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{uri} does not exist: materialize the upstream asset for this partition first "
                "(records stored by the former pickle IO manager are not read)"
            ) from None
        except ValueError as err:  # malformed JSON, or not text at all (a planted pickle)
            raise ValueError(f"{uri} is not a JSON record ({type(err).__name__}), refused") from None


def write_atomically(fs, path: str, data: bytes) -> None:
    """Readers never see half a file: locally a temporary name then an atomic rename; on Azure
    a blob upload, which becomes visible only once committed whole."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" not in protocols and "local" not in protocols:
        fs.pipe_file(path, data)
        return
    parent = posixpath.dirname(path)
    fs.makedirs(parent, exist_ok=True)
    tmp = posixpath.join(parent, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
    try:
        fs.pipe_file(tmp, data)
        fs.mv(tmp, path)  # a rename underneath: atomic within one file system
    finally:
        if fs.exists(tmp):
            fs.rm_file(tmp)


def copy_atomically(fs, source: str, path: str) -> None:
    """`write_atomically` of a small file's copy; on Azure a store-side copy (nothing downloaded),
    committed whole like an upload."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    if "file" not in protocols and "local" not in protocols:
        fs.copy(source, path)
        return
    write_atomically(fs, path, fs.cat_file(source))
