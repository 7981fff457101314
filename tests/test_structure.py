"""The package's shape, checked on its source: no import cycles (function-level imports count),
and no metric key written out anywhere but tracking/names.py."""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mlflow_energy"
NAMES = PACKAGE / "tracking" / "names.py"
SECTIONS = "energy|efficiency|emissions|power|throughput|latency|memory|measurement|quality|sweep"
METRIC_LITERAL = re.compile(rf"""["']({SECTIONS})/[a-z0-9_]+["']""")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules ``path`` imports, anywhere in it (``from a import b`` counts ``a.b``
    when that is a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    own = module_name(path)
    return {n for n in names if n in known and n != own and n != PACKAGE.name}


def test_the_package_has_no_import_cycle() -> None:
    known = modules()
    graph = {name: imported(path, known) for name, path in known.items()}
    assert len(graph) > 50 and sum(map(len, graph.values())) > 100  # the walk found the package
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from None


def test_function_level_imports_count() -> None:
    known = modules()
    # commands/run.py imports the sweep job inside execute(), not at the top
    assert "mlflow_energy.commands.sweep_job" in imported(known["mlflow_energy.commands.run"], known)


def test_metric_keys_are_written_out_only_in_names_py() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}: {line.strip()}"
        for path in PACKAGE.rglob("*.py") if path != NAMES
        for line in path.read_text().splitlines()
        if METRIC_LITERAL.search(line) and not line.lstrip().startswith("#")
    ]  # fmt: skip
    # The schema's default cannot import names.py (names.py imports the schema);
    # the test below checks that it is names.ENERGY_PER_TOKEN.
    assert found == ['mlflow_energy/config.py: metric: str = "energy/j_per_token"  # names.ENERGY_PER_TOKEN']


def test_the_registry_default_metric_is_the_headline() -> None:
    from mlflow_energy.config import RegisterConfig
    from mlflow_energy.tracking import names

    assert RegisterConfig().metric == names.ENERGY_PER_TOKEN


MLFLOW_WRITES = {
    "create_experiment", "create_run", "update_run", "set_terminated", "delete_run", "log_batch", "log_metric",
    "log_metrics", "log_param", "log_params", "set_tag", "set_tags", "log_artifact", "log_artifacts", "log_dict",
    "log_model", "start_run", "end_run", "register_model", "update_model_version", "set_registered_model_alias",
}  # fmt: skip


def test_one_module_writes_to_mlflow() -> None:
    """Every call that writes to MLflow sits in tracking/logger.py; report/ only builds files."""
    writer = PACKAGE / "tracking" / "logger.py"
    found = {
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.func.attr}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MLFLOW_WRITES
    }  # fmt: skip
    assert {entry for entry in found if not entry.startswith("mlflow_energy/tracking/logger.py")} == set()
    assert any(entry.startswith(str(writer.relative_to(PACKAGE.parent))) for entry in found)
