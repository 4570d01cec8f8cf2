"""A throw-away PostgreSQL cluster in a temporary folder (initdb + pg_ctl), for CI, tests and benchmarks.

Nothing is installed or registered as a service: the cluster lives in its own folder, listens on a free loopback
port, trusts local connections (loopback only) and is deleted by ``stop``. Durability is switched off
(``fsync=off``) because the data is thrown away. When run as root (CI), initdb refuses to run, so the cluster is
created and started as the ``postgres`` user (Debian's package creates it) through ``runuser``.

Command line (``.ci/run`` uses it)::

    python scripts/pgtemp.py start [--dir DIR]   # prints the server URL, e.g. postgresql://faceleads@127.0.0.1:5433/postgres
    python scripts/pgtemp.py stop --dir DIR

From Python (the two-server benchmark)::

    with TempPostgres() as pg:
        url = pg.url("mydb")
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

SUPERUSER = "faceleads"
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "400",
    "shared_buffers": "64MB",
    "timezone": "UTC",
    "log_min_messages": "warning",
}


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl (PATH first, then Debian's /usr/lib/postgresql/<version>/bin)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: install Debian's 'postgresql' package")
    return Path(candidates[-1]).parent


def free_port() -> int:
    """A TCP port that was free a moment ago on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TempPostgres:
    """One temporary cluster. ``start()`` returns the server URL; ``stop()`` shuts it down and removes its folder."""

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        self.folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="faceleads-pg-"))
        self.data = self.folder / "data"
        self.port = port or free_port()
        self.bindir = find_bindir()
        self._as_user: str | None = "postgres" if os.geteuid() == 0 else None

    # -- plumbing -------------------------------------------------------------------------------------------

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_user:
            cmd = ["runuser", "-u", self._as_user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, cwd="/")

    def _chown(self) -> None:
        if self._as_user:
            entry = pwd.getpwnam(self._as_user)
            for path in [self.folder, *self.folder.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for ``database`` on this cluster, as the superuser."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> str:
        """Create the cluster (if new) and start it; returns the URL of its ``postgres`` database."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        self._chown()
        if not (self.data / "PG_VERSION").exists():
            try:
                self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                          "--no-locale", "--no-sync")  # fmt: skip
            except subprocess.CalledProcessError as exc:
                raise RuntimeError(f"initdb failed: {exc.stderr.strip()}") from None
        options = " ".join(f"-c {k}={v}" for k, v in SERVER_OPTIONS.items())
        options += f" -p {self.port} -c unix_socket_directories={self.folder}"
        result = self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"),
                           "-w", "-t", "60", "start", check=False)  # fmt: skip
        if result.returncode != 0:
            log = (self.folder / "server.log").read_text(errors="replace")[-2000:] if (
                self.folder / "server.log").exists() else ""  # fmt: skip
            raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip()}\n{log}")
        self._wait_ready()
        return self.url()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not accept connections on port {self.port}")

    def stop(self, remove: bool = True) -> None:
        """Stop the server (fast shutdown) and delete the folder."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        if remove:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A throw-away PostgreSQL cluster in a temporary folder.")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--dir", type=Path, help="cluster folder (default: a new temporary folder)")
    parser.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args()
    if args.action == "start":
        pg = TempPostgres(args.dir, args.port)
        print(pg.start().replace("postgresql+psycopg://", "postgresql://"))
    else:
        if args.dir is None:
            parser.error("stop needs --dir")
        pg = TempPostgres(args.dir, port=1)
        pg.stop()


if __name__ == "__main__":
    main()
