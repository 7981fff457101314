"""The text a run read, as MLflow dataset inputs: its prompt set (context ``prompts``) and the
held-out text its perplexity was measured on (context ``quality``), so the runs table's Dataset
column and filters work. MLflow keeps each dataset's name, digest, schema and source, not the
data."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow_energy.bench.result import BenchResult
from mlflow_energy.config import ConfigError
from mlflow_energy.inference.prompts import SHIPPED_PROMPTS, read_prompt_file
from mlflow_energy.inference.quality import HF_PREFIX, SHIPPED_HELDOUT, heldout_text

log = logging.getLogger("mlflow_energy")
PROMPTS_CONTEXT, QUALITY_CONTEXT = "prompts", "quality"


def run_datasets(result: BenchResult) -> list[tuple[Any, str]]:
    """(MLflow dataset entity, context) for the prompts and, where perplexity was measured, the held-out
    text. A file that can no longer be read is left out, with a debug line."""
    import pandas as pd  # mlflow's own dependency

    workload, dataset = result.config.workload, result.config.quality.dataset
    found: list[tuple[Any, str] | None] = []
    if workload.prompts == "synthetic":
        spec = {"kind": ["random ordinary token ids"], "prompt_tokens": [workload.prompt_tokens],
                "seed": [result.config.model.seed]}  # fmt: skip
        found.append(_dataset(pd.DataFrame(spec), "synthetic", f"synthetic prompts ({workload.prompt_tokens} tokens)",
                              PROMPTS_CONTEXT))  # fmt: skip
    else:
        path = SHIPPED_PROMPTS if workload.prompts == "shipped" else Path(workload.prompts)
        found.append(_text_dataset(lambda: read_prompt_file(path), str(path.resolve()), path.name, PROMPTS_CONTEXT))
    if result.summary is not None and result.summary.quality_perplexity is not None:
        def lines() -> list[str]:
            return [line for line in heldout_text(dataset).splitlines() if line.strip()]

        path = SHIPPED_HELDOUT if dataset == "shipped" else Path(dataset)
        source, name = (dataset, dataset) if dataset.startswith(HF_PREFIX) else (str(path.resolve()), path.name)
        found.append(_text_dataset(lines, source, name, QUALITY_CONTEXT))
    return [d for d in found if d is not None]


def _text_dataset(read: Callable[[], list[str]], source: str, name: str, context: str) -> tuple[Any, str] | None:
    """One row per text; None when it cannot be read any more."""
    import pandas as pd

    try:
        texts = read()
    except (ConfigError, OSError, ImportError, ValueError) as exc:
        log.debug("dataset %s left out: %s", source, exc)
        return None
    return _dataset(pd.DataFrame({"text": texts}), source, name, context)


def _dataset(frame: Any, source: str, name: str, context: str) -> tuple[Any, str]:
    """The dataset as MLflow stores it (name, digest, schema, source), and its context."""
    from mlflow.data.pandas_dataset import from_pandas

    # MLflow warns that a path could be read as two kinds of source, and that integer columns
    # cannot hold missing values: neither applies to a record of what a run read.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return from_pandas(frame, source=source, name=name)._to_mlflow_entity(), context


def log_datasets(client: Any, run_id: str, datasets: list[tuple[Any, str]]) -> None:
    from mlflow.entities import DatasetInput, InputTag

    inputs = [DatasetInput(d, [InputTag("mlflow.data.context", c)]) for d, c in datasets]
    if inputs:
        client.log_inputs(run_id, datasets=inputs)
