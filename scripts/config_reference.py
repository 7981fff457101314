"""The configuration reference's table, generated from the schema: every key of
``mlflow_energy/config.py``'s ``RunConfig`` with the default a run gets (``conf/config.yaml``
composed by Hydra) and the field's docstring. Writes it into docs/reference/config.md between its
markers; ``--check`` exits 1 when the page differs from the schema instead.

    python scripts/config_reference.py [--check]
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "mlflow_energy" / "config.py"
PAGE = ROOT / "docs" / "reference" / "config.md"
BEGIN = "<!-- generated from mlflow_energy/config.py by scripts/config_reference.py: edit the schema, not this -->"
END = "<!-- end of the generated table -->"


def field_docs() -> dict[str, dict[str, str]]:
    """class name -> field name -> its docstring (the string right after the field)."""
    docs: dict[str, dict[str, str]] = {}
    for node in ast.parse(SCHEMA.read_text()).body:
        if isinstance(node, ast.ClassDef):
            body = node.body
            docs[node.name] = {
                field.target.id: inspect.cleandoc(doc.value.value)
                for field, doc in zip(body, body[1:], strict=False)
                if isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name) and isinstance(doc, ast.Expr)
                and isinstance(doc.value, ast.Constant) and isinstance(doc.value.value, str)
            }  # fmt: skip
    return docs


def defaults() -> dict[str, Any]:
    """What a run gets when nothing is overridden: the composed configuration, unresolved
    (an environment variable stays as the interpolation that reads it)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mlflow_energy.config import config_dir, flatten, register_schema
    from mlflow_energy.sweep.sweeper import register_sweeper

    register_schema()
    register_sweeper()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        cfg = compose(config_name="config")
    composed = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(composed, dict)
    composed.pop("hydra", None)
    return flatten(composed)


def rows() -> list[tuple[list[str], str, str]]:
    """(keys, default, meaning) in the schema's order; neighbours with the same default and
    meaning share a row (``register.max``, ``register.min``)."""
    import dataclasses
    import typing

    from mlflow_energy.config import RunConfig

    docs, values = field_docs(), defaults()
    found: list[tuple[list[str], str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = prefix + f.name
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], key + ".")
                continue
            meaning = docs[cls.__name__].get(f.name)
            if meaning is None:
                sys.exit(f"{key} has no docstring in {SCHEMA.relative_to(ROOT)}: add one under the field.")
            default = _shown(values[key])
            if found and found[-1][1:] == (default, meaning) and found[-1][0][-1].rpartition(".")[0] == prefix[:-1]:
                found[-1][0].append(key)
            else:
                found.append(([key], default, meaning))

    walk(RunConfig, "")
    return found


def _shown(value: Any) -> str:
    variable = re.fullmatch(r"\$\{oc\.env:(\w+),(.*)\}", str(value))
    if variable:
        return f"`${variable.group(1)}` or `{variable.group(2)}`"
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def table() -> str:
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for keys, default, meaning in rows():
        lines.append(f"| {', '.join(f'`{k}`' for k in keys)} | {default} | {' '.join(meaning.split())} |")
    return "\n".join(lines)


def page_with_table(page: str) -> str:
    head, begin, rest = page.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not (begin and end):
        sys.exit(f"{PAGE.relative_to(ROOT)} lacks the markers {BEGIN!r} and {END!r}.")
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the page differs from the schema")
    check = parser.parse_args().check
    current = PAGE.read_text()
    wanted = page_with_table(current)
    if check:
        if wanted != current:
            sys.exit(f"{PAGE.relative_to(ROOT)} is out of date: run python scripts/config_reference.py")
        return
    PAGE.write_text(wanted)


if __name__ == "__main__":
    main()
