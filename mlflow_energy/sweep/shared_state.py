"""What a sweep whose jobs may run on other machines needs before any job starts: a tracking
server every node reaches, and folders every node reads (the sweep folder, where jobs read the
sweep's state and write their outcomes, and the launch folder, where they keep their results
until logged). Checked in the launching process; a sweep that lacks either is refused with the
sentence saying what to set."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow_energy.config import ConfigError
from mlflow_energy.store.uris import redact_uri
from mlflow_energy.sweep.engines import Engine, engine_of, may_leave_this_host
from mlflow_energy.sweep.jobs import first_line

SERVER_SCHEMES = ("http", "https", "databricks")
# Filesystems that several machines mount as one (/proc/mounts type names).
SHARED_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "9p", "virtiofs", "wekafs",
    "panfs", "orangefs", "pvfs2", "afs", "fuse.glusterfs", "fuse.ceph-fuse", "fuse.sshfs", "fuse.juicefs",
    "fuse.gcsfuse", "fuse.s3fs", "fuse.mountpoint-s3", "fuse.weka",
})  # fmt: skip


def check_shared_state(config: Any, launch_dir: Path) -> None:
    """ConfigError when jobs may run on other machines and would not share the tracking store or
    the sweep's folders. Nothing to check when every job runs on this host."""
    launcher = config.hydra.launcher
    engine = engine_of(launcher)
    if not may_leave_this_host(engine, launcher):
        return
    where = f"hydra/launcher={engine} runs jobs on other machines"
    uri = str(config.tracking.uri)
    if urlparse(uri).scheme not in SERVER_SCHEMES:
        raise ConfigError(f"{where}, which cannot share the tracking store {redact_uri(uri)}; start a shared "
                          "`mlflow server` (docs/how-to/clusters.md) and set "
                          "tracking.uri=http://HOST:5000.")  # fmt: skip
    if cluster_is_this_host(engine, launcher):
        return
    for what, folder in (("hydra.sweep.dir", Path(config.hydra.sweep.dir)), ("the launch folder", launch_dir)):
        kind = filesystem_type(folder)
        if kind not in SHARED_FILESYSTEMS:
            raise ConfigError(f"{where}, but {what} {folder.absolute()} is on a local {kind} filesystem that they "
                              "cannot read; launch from a folder on a shared filesystem (NFS, Lustre, GPFS...) and "
                              "keep hydra.sweep.dir there.")  # fmt: skip


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (its nearest existing folder), from /proc/mounts."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    path = path.resolve()
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        inside = path == Path(mount) or Path(mount) in path.parents
        if inside and len(mount) > len(best):
            best, kind = mount, fields[2]
    return kind


def cluster_is_this_host(engine: Engine, launcher: Any) -> bool:
    """Whether every node the engine can run a job on is this machine (a single-node cluster);
    False when the engine cannot tell."""
    if engine == Engine.SLURM:
        nodes = _slurm_nodes(launcher.get("partition"))
        return bool(nodes) and nodes <= _this_host_names()
    if engine == Engine.RAY:
        return _ray_nodes_are_local(launcher.ray.init)
    return False


def _this_host_names() -> set[str]:
    name = socket.gethostname()
    return {name, name.split(".")[0], socket.getfqdn(), "localhost"}


def _slurm_nodes(partition: str | None) -> set[str]:
    command = ["sinfo", "--noheader", "--Node", "--format=%N", *([f"--partition={partition}"] if partition else [])]
    try:
        listed = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.strip() for line in listed.splitlines() if line.strip()}


def _ray_nodes_are_local(init: Any) -> bool:
    """Connects to the Ray cluster as the launcher will (it then finds Ray running) and compares
    its alive nodes' addresses with this host's."""
    import psutil
    import ray
    from omegaconf import OmegaConf

    if not ray.is_initialized():
        try:
            ray.init(**OmegaConf.to_container(init, resolve=True))  # type: ignore[arg-type]
        except (ConnectionError, RuntimeError) as exc:  # what ray.init raises for an address it cannot use
            raise ConfigError(f"hydra/launcher=ray cannot reach the Ray cluster at {init.get('address')} "
                              f"({first_line(exc)}); "
                              "start it (ray start --head) or set hydra.launcher.ray.init.address to its address, "
                              "and RAY_AUTH_MODE=token where it asks for a token.") from None  # fmt: skip
    local = {a.address for addresses in psutil.net_if_addrs().values() for a in addresses}
    return all(node["NodeManagerAddress"] in local for node in ray.nodes() if node.get("Alive"))
