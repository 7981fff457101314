"""CPU and RAM energy through CodeCarbon's task API, called only at window boundaries."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlflow_energy.adapters.codecarbon import RAPL_MODE, cpu_name_from_proc_cpuinfo, cpu_tracking_mode, power_monitor
from mlflow_energy.meter.measurement import EnergySource

JOULES_PER_KWH = 3.6e6


class HostEnergy:
    """CodeCarbon in offline mode. Its periodic scheduler is never started: ``start_task`` and
    ``stop_task`` read the CPU/RAM figures at the window boundaries, so the measured work is
    not interrupted by CodeCarbon's 15 s measurement job (seen to slow generate by 8-20%).
    A task still runs CodeCarbon's light 1 s monitor thread (0.05% busy on an H100 host)."""

    def __init__(self, country_iso_code: str, region: str | None, output_dir: Path) -> None:
        """CodeCarbon writes its own CSV files into ``output_dir``."""
        from codecarbon import OfflineEmissionsTracker

        # Its notices (fallbacks, "multiple instances") are reported as energy sources instead.
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        output_dir.mkdir(parents=True, exist_ok=True)
        with cpu_name_from_proc_cpuinfo():
            self._tracker = OfflineEmissionsTracker(
                project_name="mlflow-energy",
                country_iso_code=country_iso_code,
                region=region,
                output_dir=str(output_dir),
                output_file="emissions.csv",
                save_to_file=True,
                log_level="error",
                allow_multiple_runs=True,
                # PUE is applied once, to emissions, by the bench: energies stay what the
                # hardware drew.
                pue=1.0,
            )
            self.hardware = self._tracker.get_detected_hardware()  # also finishes hardware detection
        cpu_mode = cpu_tracking_mode(self._tracker)
        self.cpu_mode = cpu_mode or "unknown"
        self.cpu_source = EnergySource.RAPL if cpu_mode == RAPL_MODE else f"{EnergySource.ESTIMATE}:{self.cpu_mode}"
        # CodeCarbon's RAM figure is always a model of the installed memory, never a reading.
        self.ram_source = EnergySource.ESTIMATE

    def power_monitor(self) -> Any | None:
        """CodeCarbon's 1 s monitoring job, which runs during each task (None where absent)."""
        return power_monitor(self._tracker)

    def start(self, window: str) -> None:
        self._tracker.start_task(window)

    def stop(self, window: str) -> tuple[float, float]:
        """CPU and RAM joules of the window."""
        data = self._tracker.stop_task(window)
        return data.cpu_energy * JOULES_PER_KWH, data.ram_energy * JOULES_PER_KWH

    def close(self) -> None:
        """Writes CodeCarbon's own CSV (one row per task) into the output folder."""
        self._tracker.stop()
