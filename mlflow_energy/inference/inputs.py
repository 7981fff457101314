"""The files a configuration names (prompts, request lengths, held-out text), checked before any run exists."""

from __future__ import annotations

from mlflow_energy.config import RunConfig
from mlflow_energy.inference.lengths import validate_lengths
from mlflow_energy.inference.prompts import validate_prompts
from mlflow_energy.inference.quality import validate_dataset


def validate_inputs(config: RunConfig) -> None:
    """ConfigError, in one sentence, for a prompts file, a serving lengths file or a quality
    dataset that cannot be used."""
    validate_prompts(config.workload.prompts)
    if config.scenario == "serving":
        validate_lengths(config.serving.lengths)
    if config.quality.enabled:
        validate_dataset(config.quality.dataset)
