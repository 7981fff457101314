"""Fixtures of the fault-injection tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from processes import Launch


@pytest.fixture
def launch() -> Iterator[Callable[..., Launch]]:
    """Starts `mlflow-energy` commands (``launch(folder, *args, env_extra=...)``) in sessions of
    their own; whatever a test leaves running (a benchmark that only ends when stopped, a
    command held still) is ended when it ends, pass or fail."""
    started: list[Launch] = []

    def start(folder: Path, *args: str, env_extra: dict[str, str] | None = None) -> Launch:
        started.append(Launch.start(folder, *args, env_extra=env_extra))
        return started[-1]

    yield start
    for command in started:
        command.end()
