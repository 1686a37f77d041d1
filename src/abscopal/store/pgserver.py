"""A throw-away PostgreSQL server on a private port, for the test suite and the benchmarks.

It uses the server binaries of Debian's ``postgresql`` package (``make test`` installs it). PostgreSQL refuses
to run as root, so when we are root the cluster is created and started as the ``postgres`` user, in a
temporary directory that is deleted on :meth:`stop`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The throw-away server could not be started; the message says why."""


def find_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb, or the directory of initdb on PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("PostgreSQL server binaries not found (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryPostgres:
    """``with TemporaryPostgres() as pg: pg.url("mydb")``; the data directory is thrown away afterwards."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.root: Path | None = None
        self.as_postgres = os.geteuid() == 0
        self.started = False

    @classmethod
    def running_on(cls, port: int) -> TemporaryPostgres:
        """A handle on a server another process started (e.g. the test session's controller)."""
        return cls(port)

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresUnavailable(f"cannot run {cmd[0]}: {exc}") from None

    def start(self) -> TemporaryPostgres:
        self.bin = find_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="abscopal-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.socket_dir.mkdir(parents=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        res = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--no-sync")  # fmt: skip
        if res.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {res.stderr.strip()[-500:]}")
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        res = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                        "-w", "-t", "60", "start")  # fmt: skip
        if res.returncode != 0:
            log = (self.root / "log").read_text(errors="replace")[-800:] if (self.root / "log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed: {res.stderr.strip()[-300:]} {log}")
        self.started = True
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise PostgresUnavailable(f"the server did not open port {self.port}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
            self.started = False
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
