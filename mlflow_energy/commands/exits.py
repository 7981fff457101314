"""How a command ends: one sentence on stderr and a documented exit code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

EXIT_CONFIG_ERROR = 2
EXIT_RUN_FAILED = 1
EXIT_TRACKING_ERROR = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command that Ctrl-C ended


def fail(message: str, code: int) -> NoReturn:
    print(f"mlflow-energy: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def interrupted(message: str) -> NoReturn:
    print(f"mlflow-energy: interrupted: {message}", file=sys.stderr)
    raise SystemExit(EXIT_INTERRUPTED)


def writable_or_fail(folder: Path, key: str) -> None:
    from mlflow_energy.config import ConfigError, validate_output_folder

    try:
        validate_output_folder(folder, key)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG_ERROR)
