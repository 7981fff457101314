"""Train the tiny model mlflow-energy ships as its default: a 4-layer Llama-style causal LM
(about 1 M parameters; its projections are nn.Linear, so CPU int8 quantization applies) with
its own byte-level BPE tokenizer, on the project's CC0 story corpus.

    python scripts/train_tiny.py                 # about 5 minutes on 2 CPU cores

Seeded and deterministic on one machine (torch's CPU kernels, one thread count). Writes
mlflow_energy/inference/shipped/tiny-stories/ (config.json, model.safetensors, tokenizer files,
generation_config.json) and prints the held-out perplexity. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "mlflow_energy" / "inference" / "shipped" / "tiny-stories"
HELDOUT = ROOT / "mlflow_energy" / "inference" / "data" / "heldout.txt"
VOCAB, CONTEXT = 1024, 256
SPECIAL = ["<|endoftext|>"]


def build_tokenizer(text: str) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)  # fmt: skip
    tokenizer.train_from_iterator(text.splitlines(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=SPECIAL[0], eos_token=SPECIAL[0],
                                   pad_token=SPECIAL[0], padding_side="left")  # fmt: skip


def encode(tokenizer: PreTrainedTokenizerFast, text: str) -> torch.Tensor:
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for line in text.splitlines():
        ids += tokenizer(line)["input_ids"] + [eos]
    return torch.tensor(ids)


@torch.no_grad()
def perplexity(model: LlamaForCausalLM, ids: torch.Tensor) -> float:
    """Non-overlapping windows of CONTEXT tokens over ``ids``; leaves the model's mode as it was."""
    was_training = model.training
    model.eval()
    chunks = [ids[i : i + CONTEXT] for i in range(0, len(ids) - 1, CONTEXT) if len(ids[i : i + CONTEXT]) > 1]
    nll = sum(model(c[None], labels=c[None], use_cache=False).loss.item() * (len(c) - 1) for c in chunks)
    model.train(was_training)
    return math.exp(nll / sum(len(c) - 1 for c in chunks))


def optimizer_step(model: torch.nn.Module, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                   schedule: torch.optim.lr_scheduler.LRScheduler) -> None:  # fmt: skip
    """One step on ``loss``: gradients clipped to norm 1, then the learning-rate schedule."""
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    schedule.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--stories", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "train.txt"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_corpus.py"), "--stories", str(args.stories),
                        "--seed", str(args.seed), "--out", str(corpus)], check=True)  # fmt: skip
        text = corpus.read_text()
    tokenizer = build_tokenizer(text)
    train_ids, heldout_ids = encode(tokenizer, text), encode(tokenizer, HELDOUT.read_text())
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=CONTEXT, hidden_size=128,
                         intermediate_size=384, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                         tie_word_embeddings=True, rope_theta=10000.0, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    model = LlamaForCausalLM(config)
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, {len(train_ids)} training tokens, "
          f"held-out perplexity before training {perplexity(model, heldout_ids):.1f}")  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=args.steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(args.seed)
    started = time.time()
    for step in range(1, args.steps + 1):
        starts = torch.randint(0, len(train_ids) - args.seq - 1, (args.batch,), generator=generator)
        batch = torch.stack([train_ids[s : s + args.seq] for s in starts.tolist()])
        loss = model(batch, labels=batch).loss
        optimizer_step(model, loss, optimizer, schedule)
        if step % 250 == 0 or step == args.steps:
            print(f"step {step}/{args.steps}: loss {loss.item():.3f}, {time.time() - started:.0f} s")
    print(f"held-out perplexity after training {perplexity(model, heldout_ids):.2f}")
    OUT.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(OUT, safe_serialization=True)
    tokenizer.save_pretrained(OUT)
    # The class every transformers release knows (5.x writes its own new name by default).
    tokenizer_config = OUT / "tokenizer_config.json"
    tokenizer_config.write_text(
        json.dumps({**json.loads(tokenizer_config.read_text()), "tokenizer_class": "PreTrainedTokenizerFast"}, indent=2)
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
