"""Input batches of a fixed shape: synthetic token ids, or text prompts padded on the left."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.config import ConfigError, WorkloadConfig
from mlflow_energy.inference.files import read_jsonl_objects

SHIPPED_PROMPTS = Path(__file__).resolve().parent / "data" / "prompts.jsonl"


@dataclass
class Batch:
    """``input_ids`` and ``attention_mask`` of shape (batch_size, prompt_tokens), on the device."""

    input_ids: Any
    attention_mask: Any

    def as_kwargs(self) -> dict[str, Any]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def validate_prompts(prompts: str) -> None:
    """Reads the prompt file the benchmark will read, the same way, so a bad one is refused
    before any run exists (synthetic and shipped prompts need no check)."""
    if prompts not in ("synthetic", "shipped"):
        read_prompt_file(Path(prompts))


def read_prompt_file(path: Path) -> list[str]:
    """The ``text`` of every non-blank line; ConfigError naming the first bad line and the fix."""
    if not path.is_file():
        raise ConfigError(
            f"workload.prompts={str(path)!r} is neither 'synthetic', 'shipped' nor an existing JSONL file; "
            "fix the path or pick one of those."
        )
    texts = [_prompt_text(where, record) for where, record in read_jsonl_objects(path, "workload.prompts", "text")]
    if not texts:
        raise ConfigError(f"workload.prompts: {path} holds no prompt; add lines like {{\"text\": \"...\"}}.")
    return texts


def _prompt_text(where: str, record: dict[str, Any]) -> str:
    text = record["text"]
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f'{where} has a "text" that is empty or not a string; give every prompt some text.')
    return text


def make_batch(workload: WorkloadConfig, tokenizer: Any, model_vocab_size: int, device: str, seed: int) -> Batch:
    """Every batch has exactly ``prompt_tokens`` positions per row, so runs compare like for like.

    Text prompts are truncated or left-padded to that length; synthetic ids are drawn from the
    ordinary (non-special) tokens of both the tokenizer and the model.
    """
    import torch

    shape = (workload.batch_size, workload.prompt_tokens)
    if workload.prompts == "synthetic":
        special = set(tokenizer.all_special_ids)
        low = max(special) + 1 if special else 0
        high = min(len(tokenizer), model_vocab_size)
        generator = torch.Generator().manual_seed(seed)
        input_ids = torch.randint(low, high, shape, generator=generator)
        attention_mask = torch.ones(shape, dtype=torch.long)
    else:
        path = SHIPPED_PROMPTS if workload.prompts == "shipped" else Path(workload.prompts)
        texts = read_prompt_file(path)
        rows = [texts[i % len(texts)] for i in range(workload.batch_size)]
        encoded = tokenizer(
            rows, padding="max_length", truncation=True, max_length=workload.prompt_tokens, return_tensors="pt"
        )
        input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
    return Batch(input_ids.to(device), attention_mask.to(device))
