"""Real servers for the contract tests, started on 127.0.0.1 (a free port) and stopped at the end.

- ``pg_server``: a throwaway PostgreSQL cluster from the Debian packages (``initdb`` + ``pg_ctl``
  in a temporary folder, once per session; run as the ``postgres`` user when we are root);
  ``pg_url``: a fresh, empty schema of its ``tests`` database per test (the URL sets its
  ``search_path``: a schema costs milliseconds, a database about a second).
- ``chroma_server``: ``chroma run --path <tmp> --port <free>`` (once per session).

A server that cannot start (binaries or client packages missing) skips its tests, unless
``CHATREC_REQUIRE_SERVERS=1`` (``.ci/run`` sets it): then the tests fail, saying why.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_SERVERS = os.environ.get("CHATREC_REQUIRE_SERVERS", "") not in ("", "0")


def missing_server(why: str) -> None:
    """Skip (a developer's machine) or fail (CI, ``CHATREC_REQUIRE_SERVERS=1``) a test whose server cannot start."""
    if REQUIRE_SERVERS:
        pytest.fail(f"{why} (CHATREC_REQUIRE_SERVERS is set: a test's server must start)", pytrace=False)
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bin() -> Path | None:
    """The folder of PostgreSQL's server binaries: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PgServer:
    def __init__(self, bindir: Path, folder: Path, port: int, user: str | None):
        self.bindir, self.folder, self.port, self.user = bindir, folder, port, user

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def start(self) -> subprocess.CompletedProcess:
        opts = (
            f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
        )
        return self.run(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.folder / "log"), "-w", "-t", "60", "start"
        )

    def stop(self, mode: str = "immediate") -> subprocess.CompletedProcess:
        return self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://chatrec@127.0.0.1:{self.port}/{db}"

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:  # PostgreSQL refuses to run as root
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def admin(self, sql: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(db), autocommit=True) as conn:
            conn.execute(sql)


@pytest.fixture(scope="session")
def psycopg_installed() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        missing_server("psycopg is not installed (pip install 'chatrec[postgres]')")


@pytest.fixture(scope="session")
def pg_server(psycopg_installed) -> Iterator[PgServer]:
    bindir = _pg_bin()
    if bindir is None:
        missing_server("PostgreSQL's server binaries (initdb, pg_ctl) are not installed (apt-get install postgresql)")
        return
    user = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                pwd.getpwnam(name)
                user = name
                break
            except KeyError:
                continue
    folder = Path(tempfile.mkdtemp(prefix="chatrec-pg-"))
    if user:
        shutil.chown(folder, user)
    server = PgServer(bindir, folder, free_port(), user)
    init = server.run("initdb", "-D", str(server.data), "-U", "chatrec", "--auth=trust", "-E", "UTF8", "--no-sync")
    if init.returncode:
        shutil.rmtree(folder, ignore_errors=True)
        missing_server(f"initdb failed: {init.stderr.strip()[-500:]}")
    start = server.start()
    if start.returncode:
        log = (folder / "log").read_text(errors="replace")[-800:] if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        missing_server(f"PostgreSQL did not start: {start.stderr.strip()[-300:]} {log}")
    try:
        server.admin("CREATE DATABASE tests")
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """The URL of a fresh, empty schema on the session's server (dropped after the test)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_server.admin(f"CREATE SCHEMA {name}", "tests")
    try:
        yield pg_server.url("tests") + f"?options=-csearch_path%3D{name}"
    finally:
        pg_server.admin(f"DROP SCHEMA {name} CASCADE", "tests")


# --------------------------------------------------------------------------- Chroma


class ChromaServer:
    def __init__(self, host: str, port: int, folder: Path):
        self.host, self.port, self.folder = host, port, folder


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory) -> Iterator[ChromaServer]:
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        found = shutil.which("chroma")
        if not found:
            missing_server("the `chroma` command (chromadb) is not installed")
            return
        chroma = Path(found)
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = (folder / "log").open("w")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(folder / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    missing_server(f"`chroma run` did not start: {(folder / 'log').read_text(errors='replace')[-500:]}")
                time.sleep(0.2)
        yield ChromaServer("127.0.0.1", port, folder)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
