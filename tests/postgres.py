"""A throwaway PostgreSQL server on loopback for tests, from the machine's own packages.

`make test` installs Debian's postgresql; the server runs from a temporary folder on a free
port and is removed afterwards. PostgreSQL refuses to run as root, so as root the server
runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import free_port

USER = "sentimon"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL's initdb is missing: run `make test` (it installs Debian's postgresql) "
        "or apt-get install postgresql"
    )


@dataclass
class PostgresServer:
    root: Path
    port: int
    bin_dir: Path
    databases: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root}"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def create_database(self) -> str:
        import psycopg

        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)


def start_postgres() -> PostgresServer:
    root = Path(tempfile.mkdtemp(prefix="sentimon-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PostgresServer(root=root, port=free_port(), bin_dir=_bin_dir())
    server._run(
        "initdb", "-D", str(server.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"
    )
    server.start()
    return server


def remove(server: PostgresServer) -> None:
    try:
        server.stop()
    except subprocess.CalledProcessError:
        pass
    shutil.rmtree(server.root, ignore_errors=True)
