"""The lookup files pulled over HTTP, as the original ADF ForEach copy did."""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
from pydantic import Field

BUNDLED_TUTORIAL_DIR = Path(__file__).resolve().parent.parent / "data" / "netflix_tutorial"


class SourceFile(dg.Config):
    """One item of the ForEach: the dataset folder and the file name under the base URL."""

    folder_name: str
    file_name: str


DEFAULT_FILES = [
    SourceFile(folder_name=name, file_name=f"{name}.csv")
    for name in ("netflix_cast", "netflix_category", "netflix_countries", "netflix_directors")
]


class FetchError(Exception):
    pass


class HttpSourceResource(dg.ConfigurableResource):
    """Pulls `<base_url>/<file_name>` with retries and a size limit.

    The embedded default serves the bundled copies through a `file://` URL, the
    same code path as `https://` (urllib handles both).
    """

    base_url: str = Field(default=BUNDLED_TUTORIAL_DIR.as_uri(), description="Where the lookup files are served.")
    files: list[SourceFile] = Field(default_factory=lambda: list(DEFAULT_FILES))
    timeout_seconds: float = 30.0
    max_bytes: int = Field(default=256 * 1024 * 1024, description="Refuse larger downloads.")
    retries: int = Field(default=3, description="Attempts after the first, on 5xx and timeouts.")
    backoff_seconds: float = 1.0

    def source_file(self, folder_name: str) -> SourceFile:
        for item in self.files:
            if item.folder_name == folder_name:
                return item
        raise KeyError(f"no source file configured for {folder_name!r}")

    def url_for(self, item: SourceFile) -> str:
        return f"{self.base_url.rstrip('/')}/{item.file_name}"

    def fetch(self, item: SourceFile, log=None) -> bytes:
        url = self.url_for(item)
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._fetch_once(url)
            except urllib.error.HTTPError as err:
                if err.code < 500 or attempt == attempts:
                    raise FetchError(f"GET {url} failed with HTTP {err.code} after {attempt} attempt(s)") from err
                problem = f"HTTP {err.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                if attempt == attempts:
                    raise FetchError(f"GET {url} failed after {attempt} attempt(s): {err}") from err
                problem = str(err)
            delay = self.backoff_seconds * 2 ** (attempt - 1)
            if log is not None:
                log.warning(f"GET {url}: {problem}; retrying in {delay:.1f}s ({attempt}/{attempts})")
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _fetch_once(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=self.timeout_seconds) as response:
            chunks, size = [], 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > self.max_bytes:
                    raise FetchError(f"GET {url}: more than {self.max_bytes} bytes, refused")
                chunks.append(chunk)
            return b"".join(chunks)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
