"""A real single-node SLURM cluster for tests: munged, slurmctld and slurmd of Debian's packages
(``apt-get install slurm-wlm munge``), started in a folder of the test's own and stopped on exit.

A helper module, not a test module. Everything listens on 127.0.0.1 (slurmdbd excepted: it
has no such setting) on ports picked at run time, and munged has a key and a socket of its own,
so two test runs on one machine do not meet. Without ``accounting`` there is no slurmdbd:
``sacct`` fails ("Slurm accounting storage is disabled"), and submitit, which asks sacct for a
job's state, then never sees a job end that wrote no result (a cancelled one): it waits forever.
With it (``apt-get install slurmdbd mariadb-server-core`` too), sacct works, at a few seconds
more to start.

    with single_node_slurm(tmp_path, accounting=True) as cluster:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=os.environ | cluster.env, check=True)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

DAEMONS = ("munged", "slurmctld", "slurmd")
ACCOUNTING_DAEMONS = ("mariadbd", "slurmdbd")
CLUSTER_NAME = "pytest"
PARTITION = "debug"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
# The daemons (and slurmctld's helper): stopped one by one, never killed as strays.
_OWN = (*DAEMONS, *ACCOUNTING_DAEMONS, "slurmscriptd")
# Error lines of a healthy start: no state files yet, no PMIx library.
_NOISE = ("state file", "state save file", "pmix", "MPI: Cannot create context")
# A unix socket's path holds at most 107 bytes; slurmd puts one per job step in its spool folder.
_MAX_RUN_DIR = 60


class SlurmUnavailable(RuntimeError):
    """The cluster could not start here: its message carries the failing daemon's own words, for
    a ``pytest.skip``."""


@dataclass(frozen=True)
class SlurmCluster:
    """A running cluster: ``env`` goes into a client's environment (``os.environ | env``)."""

    folder: Path
    conf: Path
    partition: str
    nodes: tuple[str, ...]

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *args: str, timeout: float = 30) -> str:
        """A client command (``squeue``, ``sbatch``, ...) against this cluster; its stdout."""
        done = subprocess.run(args, env=os.environ | self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def squeue(self) -> dict[str, str]:
        """The jobs not yet finished (pending, running, completing): job id to job name."""
        out = self.run("squeue", "--noheader", "--format=%i|%j")
        return dict(line.split("|", 1) for line in out.splitlines() if line)

    def job_state(self, job_id: str) -> str:
        """A job's state as slurmctld knows it (``RUNNING``, ``COMPLETED``, ``CANCELLED``, ...),
        until ``MinJobAge`` seconds after it ends; with or without accounting."""
        out = self.run("squeue", "--noheader", "--states=all", "--format=%T", f"--jobs={job_id}")
        return out.strip()

    def scancel(self, job_id: str) -> None:
        self.run("scancel", job_id)

    def sbatch(self, *args: str) -> str:
        """Submits a job (``sbatch`` arguments); its id."""
        return self.run("sbatch", "--parsable", *args).strip().split(";")[0]


@contextmanager
def single_node_slurm(folder: Path, accounting: bool = False) -> Iterator[SlurmCluster]:
    """Starts munged, slurmctld and slurmd with their files in ``folder``, waits for the node to be
    idle, and stops them all on exit, pass or fail; raises ``SlurmUnavailable`` when one cannot
    start here. ``accounting`` adds slurmdbd on a MariaDB server of its own, for ``sacct``."""
    _require(accounting)
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        run_dir = stack.enter_context(_short_dir(folder / "run"))
        ports = Ports(*_free_ports(4))
        conf = _write_config(folder, run_dir, ports, accounting)
        env = os.environ | {"SLURM_CONF": str(conf)}
        stack.callback(_end_stray_processes, folder, conf)  # runs last: what slurmd left behind
        munged = stack.enter_context(_daemon("munged", _munged_command(run_dir), folder, env))
        _wait_for(lambda: (run_dir / "munge.socket").exists(), munged)
        if accounting:
            _start_accounting(stack, folder, run_dir, ports, env)
        ctld = stack.enter_context(_daemon("slurmctld", ["slurmctld", "-D"], folder, env))
        slurmd = stack.enter_context(_daemon("slurmd", ["slurmd", "-D"], folder, env))
        cluster = SlurmCluster(folder, conf, PARTITION, (_host(),))
        stack.callback(_end_stray_processes, folder, conf)  # before slurmd stops: it waits for its steps
        stack.callback(_cancel_all, cluster)  # runs first
        _wait_for(lambda: _node_idle(cluster), ctld, slurmd)
        yield cluster


@dataclass(frozen=True)
class Ports:
    """The TCP ports of one cluster, all on 127.0.0.1."""

    slurmctld: int
    slurmd: int
    slurmdbd: int
    mariadb: int


def _require(accounting: bool) -> None:
    """Raises ``SlurmUnavailable`` naming the programs this machine lacks."""
    programs = [*DAEMONS, "sinfo", *(ACCOUNTING_DAEMONS if accounting else ())]
    missing = [name for name in programs if shutil.which(name) is None]
    if missing:
        packages = "slurm-wlm munge" + (" slurmdbd mariadb-server-core" if accounting else "")
        raise SlurmUnavailable(f"not installed: {', '.join(missing)} (apt-get install {packages})")


def _host() -> str:
    """The short host name: the node's name, which slurmd and slurmctld check against their own."""
    return socket.gethostname().split(".")[0]


@contextmanager
def _short_dir(preferred: Path) -> Iterator[Path]:
    """``preferred`` when its sockets' paths fit, else a short folder in the system's temporary
    one, removed on exit."""
    if len(str(preferred)) <= _MAX_RUN_DIR:
        preferred.mkdir(exist_ok=True)
        yield preferred
        return
    short = Path(tempfile.mkdtemp(prefix="slurm-"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _write_config(folder: Path, run_dir: Path, ports: Ports, accounting: bool) -> Path:
    """slurm.conf for one node of all this machine's CPUs (and the munge key it names)."""
    host = _host()
    (folder / "state").mkdir(exist_ok=True)
    (run_dir / "spool").mkdir(exist_ok=True)
    key = run_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)  # munged refuses a key that others can read
    # Bind to the host's address rather than to all: only where the host name means 127.0.0.1.
    local = socket.gethostbyname(host) == "127.0.0.1"
    # To slurmdbd, slurmctld and clients take munge's socket from AccountingStoragePass, not AuthInfo.
    storage = (["AccountingStorageType=accounting_storage/slurmdbd", "AccountingStorageHost=127.0.0.1",
                f"AccountingStoragePort={ports.slurmdbd}", f"AccountingStoragePass={run_dir / 'munge.socket'}"]
               if accounting else ["AccountingStorageType=accounting_storage/none"])  # fmt: skip
    lines = [
        f"ClusterName={CLUSTER_NAME}",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ports.slurmctld}",
        f"SlurmdPort={ports.slurmd}",
        *(["CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"] if local else []),
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={run_dir / 'munge.socket'}",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={run_dir / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        # No cgroups: process tracking by /proc, no task binding, no resource sampling.
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        *storage,
        "JobCompType=jobcomp/none",
        "SwitchType=switch/none",
        "MpiDefault=none",
        # Cores are what jobs take, so several 1-CPU jobs run at once.
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/builtin",
        "SchedulerParameters=batch_sched_delay=0",  # a batch job starts within a second, not three
        "ReturnToService=2",
        "KillWait=2",
        "MinJobAge=300",  # a finished job stays visible to squeue this long
        "InactiveLimit=0",
        "MailProg=/bin/true",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory={_memory_mb()} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
    ]
    conf = folder / "slurm.conf"
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _start_accounting(stack: ExitStack, folder: Path, run_dir: Path, ports: Ports, env: dict[str, str]) -> None:
    """A MariaDB server of the cluster's own, then slurmdbd on it; both stopped by ``stack``."""
    data = folder / "mariadb"
    data.mkdir(exist_ok=True)
    # An empty data folder and no grant tables: up in a fraction of a second, where
    # mariadb-install-db takes seconds. No passwords then, but only 127.0.0.1 on a random port.
    # --no-defaults: the machine's /etc/mysql settings (its socket, its port) are not this server's.
    # Small buffers and growth steps: some 20 MB on disk, where the defaults take 80.
    mariadbd = stack.enter_context(_daemon("mariadbd", [
        "mariadbd", "--no-defaults", f"--datadir={data}", "--user=root", "--skip-grant-tables",
        "--bind-address=127.0.0.1", f"--port={ports.mariadb}", f"--socket={run_dir / 'mariadb.socket'}",
        f"--pid-file={run_dir / 'mariadb.pid'}", f"--log-error={folder / 'mariadbd.log'}", "--skip-name-resolve",
        "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=4M", "--innodb-autoextend-increment=4"],
        folder, env))  # fmt: skip
    _wait_for(lambda: _listening(ports.mariadb), mariadbd)
    dbd_conf = folder / "slurmdbd.conf"  # beside slurm.conf, where slurmdbd looks for it
    dbd_conf.touch(mode=0o600)  # slurmdbd refuses a file that others can read (it may hold a password)
    dbd_conf.write_text("\n".join([
        "AuthType=auth/munge", f"AuthInfo=socket={run_dir / 'munge.socket'}",
        f"DbdHost={_host()}", "DbdAddr=127.0.0.1", f"DbdPort={ports.slurmdbd}", "SlurmUser=root",
        f"LogFile={folder / 'slurmdbd.log'}", f"PidFile={folder / 'slurmdbd.pid'}",
        "StorageType=accounting_storage/mysql", "StorageHost=127.0.0.1", f"StoragePort={ports.mariadb}",
        "StorageUser=root", "StorageLoc=slurm_acct_db"]) + "\n")  # fmt: skip
    slurmdbd = stack.enter_context(_daemon("slurmdbd", ["slurmdbd", "-D"], folder, env))
    _wait_for(lambda: _listening(ports.slurmdbd), slurmdbd)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (all held until the last is picked, so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def _memory_mb() -> int:
    """MemTotal in MiB, as slurmd measures it: a node configured with more is refused."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


def _munged_command(run_dir: Path) -> list[str]:
    # --force: pytest's folders are private (0700), which munged calls an inaccessible socket;
    # every client here runs as root, so that is harmless.
    return ["munged", "--foreground", "--force", f"--socket={run_dir / 'munge.socket'}",
            f"--key-file={run_dir / 'munge.key'}", f"--pid-file={run_dir / 'munged.pid'}",
            f"--seed-file={run_dir / 'munged.seed'}"]  # fmt: skip


@dataclass(frozen=True)
class _Daemon:
    """A daemon started here: its log is ``folder/<name>.log``, its own output ``folder/<name>.out``."""

    name: str
    proc: subprocess.Popen
    folder: Path

    def errors(self) -> str:
        """Its fatal lines, else its error lines, else its last lines."""
        lines: list[str] = []
        for path in (self.folder / f"{self.name}.log", self.folder / f"{self.name}.out"):
            if path.exists():
                lines += path.read_text(errors="replace").splitlines()
        fatal = [line for line in lines if "fatal" in line.lower()]
        errors = [line for line in lines if "error" in line.lower() and not any(n in line for n in _NOISE)]
        return " | ".join((fatal or errors or lines)[-5:]) or "no output"


@contextmanager
def _daemon(name: str, command: list[str], folder: Path, env: dict[str, str]) -> Iterator[_Daemon]:
    """One daemon in the foreground, in a session of its own; stopped (SIGTERM, then SIGKILL) on exit."""
    with (folder / f"{name}.out").open("w") as out:
        proc = subprocess.Popen(command, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)  # fmt: skip
    try:
        yield _Daemon(name, proc, folder)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_for(ready: Callable[[], bool], *daemons: _Daemon) -> None:
    """Waits until ``ready()``; raises ``SlurmUnavailable`` with a daemon's log when one of
    ``daemons`` exits first, or with all their logs when the wait times out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        ended = next((d for d in daemons if d.proc.poll() is not None), None)
        if ended is not None:
            raise SlurmUnavailable(f"{ended.name} exited ({ended.proc.returncode}): {ended.errors()}")
        if time.monotonic() > deadline:
            logs = "; ".join(f"{d.name}: {d.errors()}" for d in daemons)
            raise SlurmUnavailable(f"not ready in {START_TIMEOUT_S:.0f} s: {logs}")
        time.sleep(0.2)


def _node_idle(cluster: SlurmCluster) -> bool:
    try:
        states = cluster.run("sinfo", "--noheader", "--Node", "--format=%t", timeout=10).split()
    except (RuntimeError, subprocess.TimeoutExpired):  # slurmctld not listening yet
        return False
    return states == ["idle"] * len(cluster.nodes)


def _cancel_all(cluster: SlurmCluster) -> None:
    """Cancels every job and waits (bounded) until none runs. A job may stay COMPLETING for
    seconds more (a step whose tasks ignore SIGTERM, as submitit's do, retries reporting to an
    srun that is gone): ``_end_stray_processes`` ends what is left of it."""
    try:
        cluster.run("scancel", f"--partition={cluster.partition}")
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and _running(cluster):
            time.sleep(0.2)
    except (RuntimeError, subprocess.TimeoutExpired):  # slurmctld gone: _end_stray_processes ends the jobs
        pass


def _running(cluster: SlurmCluster) -> bool:
    """Whether a job is in any state but COMPLETING."""
    return bool(set(cluster.run("squeue", "--noheader", "--format=%T").split()) - {"COMPLETING"})


def _end_stray_processes(folder: Path, conf: Path) -> None:
    """Kills what the cluster leaves running, and waits for it to be gone: slurmstepd (it
    outlives slurmd; known by the slurmd log it holds open) with its job's processes, and any
    other process with this cluster's SLURM_CONF (a job's, or a client the caller left)."""
    log, mine = str(folder / "slurmd.log"), {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    strays: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter():
        try:
            if proc.pid in mine:
                continue
            if proc.name() == "slurmstepd" and any(f.path == log for f in proc.open_files()):
                strays |= {p.pid: p for p in (proc, *proc.children(recursive=True))}
            elif proc.name() not in _OWN and proc.environ().get("SLURM_CONF") == str(conf):
                strays[proc.pid] = proc
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    for proc in strays.values():
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(strays.values()), timeout=STOP_TIMEOUT_S)
