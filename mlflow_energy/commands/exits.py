"""How a command ends: one sentence on stderr and a documented exit code."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from mlflow_energy.config import ConfigError

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
    try:
        validate_output_folder(folder, key)
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG_ERROR)


def validate_output_folder(folder: Path, key: str) -> None:
    """Creates ``folder`` and writes a small file in it (synced to disk), so a read-only folder or a
    full disk is refused before any run exists instead of failing the first result written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".mlflow-energy-write-check-") as probe:
            probe.write(bytes(4096))
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise ConfigError(
            f"{key}={str(folder)!r} cannot be written ({exc.strerror or exc}); "
            f"point {key} at a writable folder with free space."
        ) from None
