"""How long each serving request is: ``serving.lengths``.

A closed loop of requests that all ask for the same number of tokens finishes them together, in
waves (a model with random weights never stops early), so windows count 0 or 32 requests and the
serving interval measures the waves, not the load. Real chat traffic has long-tailed lengths:

- ``chat`` (default): each request's ``max_tokens`` is drawn from a log-normal distribution whose
  mean is LMSYS-Chat-1M's 214.5 tokens per response, and synthetic prompts from one whose mean is
  its 69.5 tokens per prompt (Zheng et al., "LMSYS-Chat-1M", ICLR 2024, Table 1). The dataset
  publishes the means; the shape (log-normal, sigma 1: median 0.61 x mean, 1 in 10 above 2.2 x
  mean) is this tool's assumption. Output lengths are capped at ``serving.max_tokens`` (null:
  what the model's positions leave after the longest prompt), prompts at ``workload.prompt_tokens``.
- ``same``: every request asks for ``serving.max_tokens`` and synthetic prompts have
  ``workload.prompt_tokens`` tokens (the behaviour of versions before ``serving.lengths``).
- a JSONL file: one request shape per line, ``{"output_tokens": 180, "prompt_tokens": 52}``
  (``prompt_tokens`` optional; it sizes synthetic prompts), drawn in a seeded order: your traffic.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.config import ConfigError
from mlflow_energy.inference.files import read_jsonl_objects

CHAT_PROMPT_MEAN_TOKENS = 69.5  # LMSYS-Chat-1M, mean tokens per prompt
CHAT_OUTPUT_MEAN_TOKENS = 214.5  # LMSYS-Chat-1M, mean tokens per response
CHAT_SIGMA = 1.0  # log-normal shape parameter: an assumption, the dataset gives only the means
UNKNOWN_POSITIONS_CAP = 1024  # serving.max_tokens=null where the model's positions are not known
_DRAWS = 512  # lengths drawn for the chat distribution; requests pick among them in a seeded order


@dataclass(frozen=True)
class RequestLengths:
    """The lengths requests draw from: ``output_tokens`` each request's ``max_tokens`` (already
    capped), ``prompt_tokens`` the synthetic prompts' lengths (tokens)."""

    output_tokens: list[int]
    prompt_tokens: list[int]


def output_cap(max_tokens: int | None, prompt_tokens: int, max_positions: int | None) -> int:
    """``serving.max_tokens``, or where it is null what the model's positions leave after the
    longest prompt (``validate_workload_fits`` made sure some are left)."""
    if max_tokens is not None:
        return max_tokens
    return max_positions - prompt_tokens if max_positions is not None else UNKNOWN_POSITIONS_CAP


def request_lengths(spec: str, max_tokens: int, prompt_tokens: int, seed: int) -> RequestLengths:
    """The lengths ``serving.lengths=spec`` asks for, outputs capped at ``max_tokens`` (ConfigError
    for a file that cannot be used)."""
    if spec == "same":
        return RequestLengths([max_tokens], [prompt_tokens])
    if spec == "chat":
        draw = random.Random(seed)
        outputs = _log_normal(draw, CHAT_OUTPUT_MEAN_TOKENS, _DRAWS)
        prompts = [min(n, prompt_tokens) for n in _log_normal(draw, CHAT_PROMPT_MEAN_TOKENS, _DRAWS)]
    else:
        outputs, prompts = _read_lengths(Path(spec))
        prompts = prompts or [prompt_tokens]
    return RequestLengths([min(n, max_tokens) for n in outputs], prompts)


def validate_lengths(spec: str) -> None:
    """Reads a lengths file the way the run will, so a bad one is refused before any run exists."""
    if spec not in ("chat", "same"):
        _read_lengths(Path(spec))


def _log_normal(draw: random.Random, mean: float, count: int) -> list[int]:
    mu = math.log(mean) - CHAT_SIGMA**2 / 2  # a log-normal's mean is exp(mu + sigma^2 / 2)
    return [max(1, round(draw.lognormvariate(mu, CHAT_SIGMA))) for _ in range(count)]


def _read_lengths(path: Path) -> tuple[list[int], list[int]]:
    if not path.is_file():
        raise ConfigError(f"serving.lengths={str(path)!r} is neither 'chat', 'same' nor an existing JSONL file; "
                          "fix the path or pick one of those.")  # fmt: skip
    outputs: list[int] = []
    prompts: list[int] = []
    for where, record in read_jsonl_objects(path, "serving.lengths", "output_tokens"):
        output, prompt = _shape(where, record)
        outputs.append(output)
        if prompt is not None:
            prompts.append(prompt)
    if not outputs:
        raise ConfigError(f'serving.lengths: {path} holds no request; add lines like {{"output_tokens": 180}}.')
    return outputs, prompts


def _shape(where: str, record: dict[str, Any]) -> tuple[int, int | None]:
    values = [record["output_tokens"], record.get("prompt_tokens", 1)]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ConfigError(f'{where} has an "output_tokens" or "prompt_tokens" that is not a whole number of at '
                          "least 1; fix that line.")  # fmt: skip
    return record["output_tokens"], record.get("prompt_tokens")
