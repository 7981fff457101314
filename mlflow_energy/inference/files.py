"""The files a configuration names (prompts, held-out text, request lengths, a model's config),
read as the benchmark reads them; each failure is a ConfigError naming the key and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow_energy.config import ConfigError


def read_jsonl_objects(path: Path, key: str, field: str) -> list[tuple[str, dict[str, Any]]]:
    """Each non-blank line of the JSONL file named under ``key``, as (where: ``KEY: line N of
    PATH``, its object); ConfigError naming the first line that is not a JSON object with
    ``field``."""
    objects = []
    for number, line in enumerate(read_text_file(path, key).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{key}: line {number} of {path}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or field not in record:
            article = "an" if field[0] in "aeiou" else "a"
            raise ConfigError(f'{where} is not a JSON object with {article} "{field}" field; fix that line.')
        objects.append((where, record))
    return objects


def read_text_file(path: Path, key: str) -> str:
    """A file the user named under ``key``, as UTF-8 text (a leading byte-order mark, as some
    editors save, dropped); ConfigError when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{key}: {path} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{key}: {path} cannot be read ({exc.strerror or exc}); make it readable or point {key} elsewhere."
        ) from None
