"""A real PostgreSQL server for tests (Debian's ``postgresql`` package): a fresh cluster of its
own, on 127.0.0.1 only, ``trust`` authentication (a test-only server), a role and a database
``mlflow``, stopped when the ``with`` block ends, pass or fail. The system cluster the package
may have made is never used.

A helper module, not a test module, like processes.py: a fixture starts the server with
``postgres_server(folder)`` and skips on ``PostgresUnavailable``."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from processes import free_port, wait_until

INSTALL = "install Debian's postgresql package (apt-get install -y postgresql)"
SERVER_USER = "postgres"  # the system user the package makes: the server refuses to run as root
DATABASE = "mlflow"  # the database, and the role that owns it
# The URI names its driver: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg (3), 2.0 as psycopg2.
DRIVER = "psycopg2"  # psycopg2-binary, the test extra's; "psycopg" for psycopg[binary] works as well
_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
# A test-only server: durability traded for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
"""
_HBA = """local all all trust
host all all 127.0.0.1/32 trust
"""


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries (or no user to run them as) on this machine."""


def postgres_bin() -> Path:
    """The bin folder of the newest PostgreSQL under /usr/lib/postgresql (initdb, pg_ctl,
    postgres, psql); ``PostgresUnavailable`` when there is none."""
    found = [d for d in Path("/usr/lib/postgresql").glob("*/bin")
             if all((d / name).is_file() for name in ("initdb", "pg_ctl", "postgres", "psql"))]  # fmt: skip
    if not found:
        raise PostgresUnavailable(f"no PostgreSQL server in /usr/lib/postgresql/*/bin: {INSTALL}")
    return max(found, key=lambda d: [int(part) if part.isdigit() else -1 for part in d.parent.name.split(".")])


def _as_server_user() -> dict[str, Any]:
    """subprocess arguments that run a command as the server's user: ``postgres`` when we are
    root, else ourselves."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(f"we are root and there is no {SERVER_USER!r} user to run the server as: "
                                  f"{INSTALL}") from None  # fmt: skip
    return {"user": SERVER_USER, "group": SERVER_USER, "extra_groups": []}


@contextmanager
def postgres_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """Starts a fresh PostgreSQL cluster on 127.0.0.1:``port`` (a free one by default) and yields
    its SQLAlchemy URI, ``postgresql+psycopg2://mlflow@127.0.0.1:<port>/mlflow``;
    stops it when the block ends, its log then in ``folder``/postgres.log.

    The cluster (data, unix socket, log) lives in a folder of its own under the system temp
    folder, removed at the end: when we are root the server runs as ``postgres``, which cannot
    reach pytest's folders (mode 0700), and a socket path must stay under 107 characters."""
    bin_dir, as_user = postgres_bin(), _as_server_user()
    port = port or free_port()
    home = Path(tempfile.mkdtemp(prefix="mlflow-energy-pg-"))
    data, log = home / "data", home / "postgres.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | {"LC_ALL": "C"}

    def pg(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=home, env=env, capture_output=True, text=True,
                              timeout=120, **as_user)  # fmt: skip
        if done.returncode:
            server_log = log.read_text()[-3000:] if log.is_file() else ""
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}{server_log}")
        return done

    def psql(*args: str, host: str = str(home), user: str = SERVER_USER, database: str = "postgres") -> str:
        return pg("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(port), "-U", user,
                  "-d", database, *args).stdout.strip()  # fmt: skip

    try:
        if as_user:
            shutil.chown(home, SERVER_USER, SERVER_USER)
        pg("initdb", "-D", str(data), "-U", SERVER_USER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(_CONF.format(port=port, sockets=home))
        (data / "pg_hba.conf").write_text(_HBA)  # the cluster's user owns the file already: rewriting keeps it
        pg("pg_ctl", "start", "-D", str(data), "-l", str(log), "-w", "-t", "60")  # -w: until it accepts connections
        psql("-c", f"CREATE ROLE {DATABASE} LOGIN", "-c", f"CREATE DATABASE {DATABASE} OWNER {DATABASE}")
        # The URI's own way in: TCP on 127.0.0.1, as the mlflow role.
        assert psql("-c", "SELECT 1", host="127.0.0.1", user=DATABASE, database=DATABASE) == "1"
        yield f"postgresql+{DRIVER}://{DATABASE}@127.0.0.1:{port}/{DATABASE}"
    finally:
        _stop(bin_dir, data, env, as_user)
        if log.is_file():
            shutil.copyfile(log, folder / "postgres.log")
        shutil.rmtree(home, ignore_errors=True)


def _stop(bin_dir: Path, data: Path, env: dict[str, str], as_user: dict[str, Any]) -> None:
    """Stops the cluster's server (fast shutdown: open sessions are ended) and waits until its
    postmaster is gone; kills it when it does not stop."""
    pid_file = data / "postmaster.pid"
    if not pid_file.is_file():  # never started, or gone already
        return
    pid = int(pid_file.read_text().split()[0])
    try:
        subprocess.run([str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60"],
                       cwd=data.parent, env=env, capture_output=True, timeout=90, **as_user)  # fmt: skip
    except subprocess.TimeoutExpired:
        pass  # killed below
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _alive(pid), "the PostgreSQL server to end", timeout_s=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # Not our child (pg_ctl starts it detached), so never a zombie of ours; still check its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
