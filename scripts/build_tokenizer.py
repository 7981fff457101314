"""Build the byte-level BPE tokenizer shipped with mlflow-energy (no download needed).

    python scripts/build_tokenizer.py

Trains on the shipped prompts (mlflow_energy/inference/data/prompts.jsonl, CC0) and writes
mlflow_energy/inference/shipped/tokenizer/. Deterministic: same input, same files.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent / "mlflow_energy" / "inference"
VOCAB_SIZE = 1024
SPECIAL = ["<|pad|>", "<|bos|>", "<|eos|>"]


def main() -> None:
    texts = [json.loads(line)["text"] for line in (ROOT / "data" / "prompts.jsonl").read_text().splitlines()]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<|pad|>",
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        padding_side="left",
    )
    out = ROOT / "shipped" / "tokenizer"
    fast.save_pretrained(out)
    print(f"wrote {out} ({len(fast)} tokens)")


if __name__ == "__main__":
    main()
