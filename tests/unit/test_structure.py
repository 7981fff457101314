"""The package's shape, checked on its source: no import cycles (function-level imports count),
and no metric key written out anywhere but store/names.py."""

from __future__ import annotations

import ast
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from processes import REPO

PACKAGE = REPO / "mlflow_energy"
PLUGINS = PACKAGE.parent / "hydra_plugins" / "mlflow_energy_sweeper"
NAMES = PACKAGE / "store" / "names.py"
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


# The package's folders (and top-level modules) from the bottom up: each imports only from its own
# layer's folder and the layers below it. Folders sharing a layer do not import each other.
LAYERS = [
    {"lifetime", "adapters"},  # how a process ends; other libraries' internals
    {"config"},  # the schema, its defaults and the checks that need no machine
    {"meter"},  # how much energy a window cost
    {"inference"},  # the work measured: models, generation, quality, the server and its load
    {"bench"},  # the protocol: one benchmark result, in its own process
    {"store"},  # MLflow's names, filters and reads
    {"report"},  # tables and figures from results and runs
    {"record"},  # a result as an MLflow run: the one writer
    {"registry", "integrations"},  # the most efficient model registered; the meter in users' MLflow work
    {"sweep"},  # a multirun as one parent run: jobs, state, launchers, its report
    {"commands"},  # the CLI's commands
    {"hydra_plugins"},  # the sweeper and launchers Hydra loads by name
    {"cli"},  # the console entry point
    {"__main__"},  # python -m mlflow_energy
]


def folder_of(module: str) -> str:
    parts = module.split(".")
    return parts[0] if parts[0] == "hydra_plugins" else parts[1]


def test_folders_import_one_way_from_the_top_down() -> None:
    known = modules() | {module_name(path): path for path in PLUGINS.rglob("*.py")}
    layer = {folder: i for i, folders in enumerate(LAYERS) for folder in folders}
    found = {folder_of(m) for m in known if m != PACKAGE.name}
    assert found == set(layer), f"every folder has a layer: {sorted(found ^ set(layer))}"
    wrong = sorted(
        f"{module} imports {target}"
        for module, path in known.items() if module != PACKAGE.name
        for target in imported(path, known)
        if folder_of(target) != folder_of(module) and layer[folder_of(target)] >= layer[folder_of(module)]
    )  # fmt: skip
    assert wrong == []


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
    from mlflow_energy.store import names

    assert RegisterConfig().metric == names.ENERGY_PER_TOKEN


MLFLOW_WRITES = {
    "create_experiment", "create_run", "update_run", "set_terminated", "delete_run", "log_batch", "log_metric",
    "log_metrics", "log_param", "log_params", "set_tag", "set_tags", "log_artifact", "log_artifacts", "log_dict",
    "log_model", "start_run", "end_run", "register_model", "update_model_version", "set_registered_model_alias",
}  # fmt: skip


def test_one_module_writes_to_mlflow() -> None:
    """Every call that writes to MLflow sits in record/writer.py; report/ only builds files."""
    writer = PACKAGE / "record" / "writer.py"
    found = {
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.func.attr}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MLFLOW_WRITES
    }  # fmt: skip
    assert {entry for entry in found if not entry.startswith("mlflow_energy/record/writer.py")} == set()
    assert any(entry.startswith(str(writer.relative_to(PACKAGE.parent))) for entry in found)


def test_the_schema_lists_the_methods_the_registered_models_code_knows() -> None:
    """inference/pruning.py and inference/quantization.py ship standalone inside every registered
    model, so the schema keeps its own lists of their methods: the same ones."""
    from mlflow_energy.config import PRUNING_METHODS, QUANTIZATIONS, pruning_applies
    from mlflow_energy.inference import pruning, quantization

    assert PRUNING_METHODS == pruning.METHODS and QUANTIZATIONS == quantization.QUANTIZATIONS
    for method in PRUNING_METHODS:
        for drop in (0, [], 2, [1]):
            assert pruning_applies(method, drop) == pruning.applies(method, drop)
