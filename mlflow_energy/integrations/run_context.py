"""An MLflow run context provider: every run that ``mlflow.start_run`` creates while the package is
installed gets the hardware tags (GPU model, count, driver and power limit, CPU model).

MLflow loads it from the entry point group ``mlflow.run_context_provider`` (pyproject.toml) when
``mlflow`` is imported, and asks it for tags at every ``start_run``. The hardware is read once per
process, in a background thread started with the provider, so the first run seldom waits for
it; ``MLFLOW_ENERGY_RUN_CONTEXT=0`` turns the provider off. It never fails a run: whatever goes
wrong, the run gets no hardware tags and the process one warning.

Nothing in the package imports this module. A script that imports it before ``mlflow`` leaves the
provider out of that process: importing mlflow loads the entry point, finds this module half
imported, and MLflow warns and registers nothing.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import platform
import threading
from pathlib import Path
from typing import Any

from mlflow.tracking.context.abstract_context import RunContextProvider

ENV_SWITCH = "MLFLOW_ENERGY_RUN_CONTEXT"
OFF_VALUES = ("0", "false", "no", "off")
CPUINFO = Path("/proc/cpuinfo")

log = logging.getLogger(__name__)


class HardwareContextProvider(RunContextProvider):
    """The hardware tags of this process, for MLflow's run context registry."""

    def __init__(self) -> None:
        # MLflow makes the provider at `import mlflow`: reading the hardware (about 25 ms on an H100
        # host, plus imports) then overlaps whatever the script does before its first run.
        if self.in_context():
            threading.Thread(target=_read_once, name="mlflow-energy-hardware", daemon=True).start()

    def in_context(self) -> bool:
        # Read at every run, not cached: a script may switch the provider off after importing mlflow.
        return os.environ.get(ENV_SWITCH, "1").strip().lower() not in OFF_VALUES

    def tags(self) -> dict[str, str]:
        return dict(_read_once())  # a copy: MLflow merges into what it gets


_READING = threading.Lock()


def _read_once() -> dict[str, str]:
    """The cached tags; a caller that comes while the background read runs waits for it."""
    with _READING:
        return _cached_tags()


@functools.lru_cache(maxsize=1)
def _cached_tags() -> dict[str, str]:
    # A failure is cached too, so a broken NVML costs one warning per process, not one per run.
    return collect_tags()


def collect_tags(nvml: Any | None = None) -> dict[str, str]:
    """The hardware tags; none, and a warning, where anything goes wrong."""
    try:
        from mlflow_energy.store import names

        return names.hardware_tags(cpu_model(), *visible_gpus(nvml))
    except Exception as exc:  # a run context must never fail a run
        log.warning("mlflow-energy could not read this machine's hardware, so runs get no hardware tags (%r).", exc)
        return {}


def visible_gpus(nvml: Any | None = None) -> tuple[list[str], str | None, list[float]]:
    """The model of each GPU CUDA would show this process, the driver and their power limits (W)."""
    # Imported here, not at the top: MLflow imports this module at every ``import mlflow``.
    from mlflow_energy.meter.gpu import resolve_visible_handles

    if nvml is None:
        nvml = importlib.import_module("pynvml")
    try:
        nvml.nvmlInit()
    except Exception:  # no driver or no GPU (NVMLError_LibraryNotFound, DriverNotLoaded...): a CPU machine
        return [], None, []
    try:
        # pynvml, not NvmlGpus: that one also probes each GPU's energy counter and clocks, 2.5 times
        # the NVML time per GPU (on an H100, first calls in a process: about 17 ms against 7).
        handles = [handle for _, handle in resolve_visible_handles(nvml, os.environ.get("CUDA_VISIBLE_DEVICES"))]
        if not handles:
            return [], None, []
        limits = [w for h in handles if (w := _power_limit_w(nvml, h)) is not None]
        models = [_text(nvml.nvmlDeviceGetName(h)) for h in handles]
        return models, _text(nvml.nvmlSystemGetDriverVersion()), limits
    finally:
        nvml.nvmlShutdown()


def _power_limit_w(nvml: Any, handle: Any) -> float | None:
    try:
        return float(nvml.nvmlDeviceGetPowerManagementLimit(handle)) / 1000.0
    except nvml.NVMLError:  # not supported (MIG instances, some boards): the other tags still hold
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def cpu_model(cpuinfo: Path = CPUINFO) -> str | None:
    """The CPU's brand string, as CodeCarbon reports it on Linux, without py-cpuinfo's second of probing."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass  # not Linux
    return platform.processor() or None
