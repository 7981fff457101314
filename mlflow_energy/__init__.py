"""mlflow-energy: what LLM inference costs in energy and carbon, tracked in MLflow."""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``track``, ``autolog``, ``trace_energy``, the ``energy`` scorer and ``shipped_model_path``,
    imported on first use: importing the package (as MLflow's plugin discovery does in every
    process) stays cheap."""
    if name == "track":
        from mlflow_energy.integrations.track import track

        return track
    if name in ("autolog", "trace_energy"):
        from mlflow_energy.integrations import span_energy

        return getattr(span_energy, name)
    if name == "energy":
        from mlflow_energy.integrations.energy_scorer import energy

        return energy
    if name == "shipped_model_path":
        from mlflow_energy.inference.models import shipped_model_path

        return shipped_model_path
    raise AttributeError(f"module 'mlflow_energy' has no attribute {name!r}")
