"""Console entry point: ``mlflow-energy <command>``; each command lives in ``commands/``."""

from __future__ import annotations

import sys

from mlflow_energy.commands.compare_hardware import compare_hardware_command
from mlflow_energy.commands.exits import EXIT_CONFIG_ERROR, EXIT_INTERRUPTED, fail
from mlflow_energy.commands.log import log_command
from mlflow_energy.commands.register import register_command
from mlflow_energy.commands.report import report_command
from mlflow_energy.commands.run import run_command
from mlflow_energy.lifetime import exit_without_teardown

USAGE = """usage: mlflow-energy <command> [arguments]

commands:
  run [-m] [key=value ...]   measure one configuration (Hydra overrides; -m sweeps a grid)
  run --overrides "STRING"   the same, overrides in one string (how MLproject passes them)
  log OUTPUT_DIR             log a saved result folder (result.json) to MLflow again
  report --experiment NAME [--sweep ID]
                             rebuild a sweep's report (summary.csv/html, pareto.png) from the store
  register --experiment NAME --name MODEL [--sweep ID] [--metric M] [--max M=V] [--min M=V]
           [--allow-overlap]  register the most efficient qualifying run in the Model Registry; the
                             champion alias moves only when the new one is better beyond both 95%
                             intervals (--allow-overlap: on a better value)
  compare-hardware --experiment NAME [--experiment NAME ...] [--tracking-uri URI ...] [--baseline TEXT]
                   [--out DIR]
                             the same configurations measured on different hardware, side by side:
                             J/token, tokens/s and their ratios to a baseline class (hardware.csv/md/png)

`mlflow-energy run --help` lists the configuration groups; `mlflow-energy run --cfg job`
prints the resolved configuration without running anything.
"""

COMMANDS = {
    "run": run_command,
    "log": log_command,
    "report": report_command,
    "register": register_command,
    "compare-hardware": compare_hardware_command,
}


def console() -> None:
    """The ``mlflow-energy`` program: ``main``, then an exit that skips the interpreter's teardown."""
    try:
        main()
    except SystemExit as exc:
        exit_without_teardown(exc.code)
    exit_without_teardown(0)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else EXIT_CONFIG_ERROR)
    command = COMMANDS.get(argv[0])
    if command is None:
        fail(f"unknown command {argv[0]!r}; use one of: {', '.join(COMMANDS)}.", EXIT_CONFIG_ERROR)
    from mlflow_energy.store.kept import bound_mlflow_retries

    bound_mlflow_retries()  # every command: MLflow's own retries would wait minutes for a dead server
    try:
        command(argv[1:])
    except KeyboardInterrupt:  # before `run` takes over Ctrl-C, or in the other commands
        fail("interrupted (Ctrl-C); results on disk are kept.", EXIT_INTERRUPTED)
