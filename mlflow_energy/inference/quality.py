"""What quality the energy bought: perplexity of the model on held-out text."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.config import ConfigError, QualityConfig
from mlflow_energy.inference.files import read_text_file

SHIPPED_HELDOUT = Path(__file__).resolve().parent / "data" / "heldout.txt"
HF_PREFIX = "hf:"


@dataclass(frozen=True)
class Perplexity:
    """exp(mean negative log-likelihood per predicted token) over ``tokens`` predicted tokens."""

    perplexity: float
    tokens: int


def validate_dataset(dataset: str) -> None:
    """Cheap checks before any work; ConfigError with the fix."""
    if dataset == "shipped":
        return
    if dataset.startswith(HF_PREFIX):
        if len(dataset[len(HF_PREFIX) :].split(":")) < 2:
            raise ConfigError(
                f"quality.dataset={dataset!r} must read hf:NAME[:CONFIG]:SPLIT, "
                "e.g. hf:wikitext:wikitext-2-raw-v1:test."
            )
        try:
            import datasets  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"quality.dataset={dataset!r} needs the datasets package; pip install datasets, or use a text file."
            ) from None
        return
    _read_text_dataset(dataset)


def _read_text_dataset(dataset: str) -> str:
    """A held-out text file the user named; ConfigError when it is missing, unreadable, not UTF-8 or blank."""
    path = Path(dataset)
    if not path.is_file():
        raise ConfigError(
            f"quality.dataset={dataset!r} is neither 'shipped', hf:NAME:SPLIT nor an existing text file; fix the path."
        )
    text = read_text_file(path, "quality.dataset")
    if not text.strip():
        raise ConfigError(f"quality.dataset: {path} is empty; give it held-out text or use quality.dataset=shipped.")
    return text


def heldout_text(dataset: str) -> str:
    """``shipped`` (the project's CC0 held-out stories), a text file, or ``hf:NAME[:CONFIG]:SPLIT``
    through the optional ``datasets`` package (its ``text`` column)."""
    if dataset == "shipped":
        return SHIPPED_HELDOUT.read_text(encoding="utf-8")
    if dataset.startswith(HF_PREFIX):
        import datasets

        *name, split = dataset[len(HF_PREFIX) :].split(":")
        rows = datasets.load_dataset(*name, split=split)
        return "\n".join(t for t in rows["text"] if t.strip())
    return _read_text_dataset(dataset)


def perplexity(model: Any, tokenizer: Any, text: str, quality: QualityConfig, device: str) -> Perplexity:
    """Non-overlapping windows of ``quality.context_tokens`` over the first ``quality.max_tokens``
    tokens of ``text`` (lines joined by EOS), batched ``quality.batch_size`` at a time."""
    import torch

    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for line in text.splitlines():
        if line.strip():
            ids += tokenizer(line, add_special_tokens=False)["input_ids"] + ([eos] if eos is not None else [])
        if len(ids) >= quality.max_tokens:
            break
    ids = ids[: quality.max_tokens]
    model_limit = getattr(model.config, "max_position_embeddings", None)
    context = min(quality.context_tokens, model_limit or quality.context_tokens)
    windows = [ids[i : i + context] for i in range(0, len(ids), context)]
    windows = [w for w in windows if len(w) > 1]
    if not windows:
        raise ValueError("the held-out text is too short to compute a perplexity")
    nll, predicted = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(windows), quality.batch_size):
            group = windows[start : start + quality.batch_size]
            for window in _same_length(group):
                batch = torch.tensor(window, device=device)
                logits = model(input_ids=batch).logits.float()
                loss = torch.nn.functional.cross_entropy(
                    logits[:, :-1].reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
                )
                nll += loss.item()
                predicted += batch[:, 1:].numel()
    return Perplexity(math.exp(nll / predicted), predicted)


def _same_length(windows: list[list[int]]) -> list[list[list[int]]]:
    """Splits a group so each part stacks into one tensor (only the last window is shorter)."""
    full = [w for w in windows if len(w) == len(windows[0])]
    rest = [w for w in windows if len(w) != len(windows[0])]
    return [part for part in (full, *([w] for w in rest)) if part]
