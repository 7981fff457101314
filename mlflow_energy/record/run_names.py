"""How the runs of a sweep are named, and the overrides that launched them as MLflow params."""

from __future__ import annotations

import re
from typing import Any

from mlflow_energy.adapters.hydra import override_key
from mlflow_energy.config import PLAN_PREFIX


def point_name(overrides: list[str], keys: list[str]) -> str:
    """``model.dtype=float32,workload.batch_size=4``: the swept overrides of one point."""
    described = [o for o in overrides if not override_key(o).startswith(PLAN_PREFIX)]
    chosen = [o for o in described if o.partition("=")[0] in keys] or described
    return ",".join(chosen) or "default"


def replicate_run_name(name: str, replicate: int, replicates: int) -> str:
    """``workload.batch_size=4 #2/3``: the child run of one replicate (the point name alone
    when there is one replicate)."""
    return name if replicates == 1 else f"{name} #{replicate + 1}/{replicates}"


def point_of_run_name(run_name: str) -> str:
    """``workload.batch_size=4 #2/3`` -> ``workload.batch_size=4``: the point a replicate measured."""
    return re.sub(r" #\d+/\d+$", "", run_name)


def override_params(overrides: list[str]) -> list[Any]:
    """``key=value`` overrides as MLflow params, the last of a key winning: ``+precision`` ->
    ``precision`` (MLflow allows no ``+`` or ``~`` in names), values cut to MLflow's 6,000
    characters; ``tracking.uri`` without credentials."""
    from mlflow.entities import Param

    from mlflow_energy.store.uris import redact_uri

    values = {k.lstrip("+~"): v for k, _, v in (o.partition("=") for o in overrides)}
    if "tracking.uri" in values:
        values["tracking.uri"] = redact_uri(values["tracking.uri"])
    return [Param(k, v[:6000]) for k, v in values.items()]
