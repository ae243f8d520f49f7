"""A throwaway PostgreSQL server for the tests: Debian's binaries (`make test` installs
the `postgresql` package), a private data directory and socket directory, a free port
on 127.0.0.1, and a password-authenticated role owning one database.

initdb and postgres refuse to run as root: under uid 0 (CI containers) they run as the
`postgres` system user created by the Debian package (`runuser -u postgres --`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))


def debian_bin_dir() -> Optional[Path]:
    """`/usr/lib/postgresql/<newest version>/bin`, or None when the package is not installed."""
    candidates = [p for p in DEBIAN_PG_ROOT.glob("*/bin/initdb") if p.is_file()]
    return max(candidates, key=_version_key).parent if candidates else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    database: str
    user: str
    password: str
    socket_dir: str
    timings: dict[str, float]

    def env(self) -> dict[str, str]:
        """What deploy/prod/dagster.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.database,
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def connect(self, **overrides):
        """A psycopg2 connection over TCP with the password (what Dagster does)."""
        import psycopg2

        params = dict(host=self.host, port=self.port, dbname=self.database, user=self.user, password=self.password)
        params.update(overrides)
        return psycopg2.connect(connect_timeout=5, **params)


class _Runner:
    """Runs the server binaries directly, or as the `postgres` user when we are root."""

    def __init__(self, bin_dir: Path, workdir: Path):
        self.bin_dir = bin_dir
        self.workdir = workdir
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                message = f"running as root and there is no {SYSTEM_USER!r} user to run PostgreSQL as"
                raise RuntimeError(message) from None
            os.chown(workdir, account.pw_uid, account.pw_gid)
            self.prefix = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", SYSTEM_USER, "--"]

    def __call__(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [*self.prefix, str(self.bin_dir / program), *args]
        result = subprocess.run(
            command, cwd=self.workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{shlex.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result


@contextlib.contextmanager
def running_postgres(bin_dir: Path, database: str = "dagster", user: str = "dagster") -> Iterator[Postgres]:
    """initdb + start on 127.0.0.1:<free port>; create `user` (password) owning `database`;
    stop with `pg_ctl stop -m fast` and remove everything on exit."""
    import psycopg2

    # Not under pytest's basetemp: that is 0700 root-owned, the postgres user could not enter it.
    workdir = Path(tempfile.mkdtemp(prefix="netflix-pg-"))
    data_dir, socket_dir, log_file = workdir / "data", workdir / "socket", workdir / "postgres.log"
    timings: dict[str, float] = {}
    started = False
    try:
        run = _Runner(bin_dir, workdir)
        start = time.monotonic()
        # The bootstrap superuser is reachable only through the private socket directory (trust);
        # TCP on 127.0.0.1 needs a password (scram-sha-256), like a production server.
        run("initdb", "-D", str(data_dir), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
            "--encoding=UTF8", "--locale=C", "--no-sync")
        timings["initdb"] = time.monotonic() - start
        socket_dir.mkdir()
        if run.prefix:
            account = pwd.getpwnam(SYSTEM_USER)
            os.chown(socket_dir, account.pw_uid, account.pw_gid)

        port = free_port()
        options = [
            "-h", "127.0.0.1", "-p", str(port), "-k", str(socket_dir),
            # A disposable test cluster: no durability, small footprint.
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "shared_buffers=32MB", "-c", "max_connections=50",
        ]
        start = time.monotonic()
        started = True  # from here on, always try to stop it
        result = run("pg_ctl", "start", "-D", str(data_dir), "-l", str(log_file), "-w", "-t", "60",
                     "-o", shlex.join(options), check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed:\n{result.stdout}{result.stderr}\n{_tail(log_file)}")
        deadline = time.monotonic() + 30
        while run("pg_isready", "-h", "127.0.0.1", "-p", str(port), "-t", "1", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL is not ready on 127.0.0.1:{port}:\n{_tail(log_file)}")
            time.sleep(0.1)
        timings["start"] = time.monotonic() - start

        password = secrets.token_urlsafe(24)
        admin = psycopg2.connect(host=str(socket_dir), port=port, user="postgres", dbname="postgres", connect_timeout=5)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s', (password,))
            cur.execute(f'CREATE DATABASE "{database}" OWNER "{user}"')
        admin.close()
        yield Postgres("127.0.0.1", port, database, user, password, str(socket_dir), timings)
    finally:
        if started:
            start = time.monotonic()
            run("pg_ctl", "stop", "-D", str(data_dir), "-m", "fast", "-w", "-t", "60", check=False)
            timings["stop"] = time.monotonic() - start
        shutil.rmtree(workdir, ignore_errors=True)


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError as error:
        return f"({error})"
