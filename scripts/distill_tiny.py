"""Distil the shipped tiny-stories model (the teacher: 4 layers) into a 2-layer student of the same
width: depth pruning, then knowledge distillation (as in DistilBERT and Minitron). The student
starts as the teacher with its middle layers dropped (embeddings, final norm and decoder layers 0
and 3 kept) and learns the teacher's output distribution: KL(teacher || student) at temperature 2,
times T^2 (Hinton et al.), on the same CC0 story corpus the teacher trained on, tokenized with the
teacher's own tokenizer.

    python scripts/distill_tiny.py                       # about 3-4 minutes on 2 CPU cores
    python scripts/distill_tiny.py --fast --out /tmp/s   # CI: a few steps, a few seconds

Seeded and deterministic on one machine (torch's CPU kernels, one thread count). Writes
mlflow_energy/inference/shipped/tiny-stories-distilled/ (config.json, model.safetensors,
generation_config.json, and the teacher's tokenizer files, copied byte for byte) and prints the
held-out perplexity of the teacher, of the student at initialisation and after distillation.
The shipped student uses pure distillation (--hard-weight 0). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from train_tiny import encode, optimizer_step, perplexity  # scripts/ is on the path of a script run from it
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "mlflow_energy" / "inference" / "shipped"
TEACHER = SHIPPED / "tiny-stories"
OUT = SHIPPED / "tiny-stories-distilled"
HELDOUT = ROOT / "mlflow_energy" / "inference" / "data" / "heldout.txt"
KEEP = (0, 3)  # the teacher's first and last decoder layers
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def build_student(teacher: LlamaForCausalLM, keep: tuple[int, ...]) -> LlamaForCausalLM:
    """The teacher's architecture with only the decoder layers ``keep``, initialised from the teacher:
    embeddings, final norm and the kept layers (renumbered 0, 1, ...); the LM head stays tied."""
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(keep)
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = [config.layer_types[i] for i in keep]
    student = LlamaForCausalLM(config)
    renamed = {f"model.layers.{old}.": f"model.layers.{new}." for new, old in enumerate(keep)}
    state = {}
    for key, value in teacher.state_dict().items():
        if key.startswith("model.layers."):
            prefix = ".".join(key.split(".")[:3]) + "."
            if prefix not in renamed:
                continue  # a dropped layer
            key = renamed[prefix] + key[len(prefix) :]
        state[key] = value.clone()
    student.load_state_dict(state, strict=True)
    # The KV cache is indexed by each attention module's layer_idx: it must be the layer's new position.
    for position, layer in enumerate(student.model.layers):
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = position
    student.generation_config = copy.deepcopy(teacher.generation_config)
    return student


@torch.no_grad()
def check_generation(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, new_tokens: int = 8) -> str:
    """Greedy generation with the KV cache returns ``new_tokens`` tokens, the same as without it."""
    was_training = model.training
    model.eval()
    prompt = tokenizer("Once upon a time", return_tensors="pt", return_token_type_ids=False)  # generate refuses them
    kwargs = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                  pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    cached = model.generate(**prompt, use_cache=True, **kwargs)
    uncached = model.generate(**prompt, use_cache=False, **kwargs)
    model.train(was_training)
    assert cached.shape[1] == prompt["input_ids"].shape[1] + new_tokens, cached.shape
    assert torch.equal(cached, uncached), "generation with the KV cache differs from generation without it"
    return str(tokenizer.decode(cached[0], skip_special_tokens=True))


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher_T || student_T) * T^2: summed over the vocabulary, averaged over positions."""
    student_log_p = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_log_p = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    kl = F.kl_div(student_log_p, teacher_log_p, log_target=True, reduction="none").sum(-1)
    return kl.mean() * temperature**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3, help="OneCycle's peak learning rate")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--hard-weight", type=float, default=0.0,
                        help="weight of cross-entropy on the corpus tokens (the KL term gets 1 - this); "
                             "the shipped student uses 0: pure distillation")  # fmt: skip
    parser.add_argument("--stories", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--fast", action="store_true",
                        help="CI: 5 steps on 300 stories, perplexity on 2048 held-out tokens")  # fmt: skip
    args = parser.parse_args()
    if args.fast:
        args.steps, args.stories = 5, 300
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "train.txt"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_corpus.py"), "--stories", str(args.stories),
                        "--seed", str(args.seed), "--out", str(corpus)], check=True)  # fmt: skip
        text = corpus.read_text()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(TEACHER)
    train_ids, heldout_ids = encode(tokenizer, text), encode(tokenizer, HELDOUT.read_text())
    if args.fast:
        heldout_ids = heldout_ids[:2048]
    teacher = LlamaForCausalLM.from_pretrained(TEACHER).eval()
    teacher.requires_grad_(False)
    student = build_student(teacher, KEEP)
    print(f"teacher {teacher.num_parameters() / 1e6:.3f} M parameters ({teacher.config.num_hidden_layers} layers), "
          f"student {student.num_parameters() / 1e6:.3f} M ({student.config.num_hidden_layers} layers, teacher "
          f"layers {', '.join(map(str, KEEP))}), {len(train_ids)} training tokens")  # fmt: skip
    print(f"held-out perplexity of the teacher {perplexity(teacher, heldout_ids):.3f}")
    print(f"held-out perplexity of the student at initialisation {perplexity(student, heldout_ids):.3f}")
    print(f"student at initialisation: {check_generation(student, tokenizer)!r}")

    student.train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(args.seed)
    trained = time.time()
    for step in range(1, args.steps + 1):
        starts = torch.randint(0, len(train_ids) - args.seq - 1, (args.batch,), generator=generator)
        batch = torch.stack([train_ids[s : s + args.seq] for s in starts.tolist()])
        with torch.no_grad():
            teacher_logits = teacher(batch, use_cache=False).logits
        if args.hard_weight:
            out = student(batch, labels=batch, use_cache=False)
            soft = distillation_loss(out.logits, teacher_logits, args.temperature)
            loss = (1 - args.hard_weight) * soft + args.hard_weight * out.loss
        else:
            loss = soft = distillation_loss(student(batch, use_cache=False).logits, teacher_logits, args.temperature)
        optimizer_step(student, loss, optimizer, schedule)
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}/{args.steps}: loss {loss.item():.4f} (KL*T^2 {soft.item():.4f}), "
                  f"{time.time() - trained:.0f} s")  # fmt: skip
    distilled = time.time() - trained
    print(f"held-out perplexity of the student after distillation {perplexity(student, heldout_ids):.3f}")
    print(f"student after distillation: {check_generation(student, tokenizer)!r}")

    args.out.mkdir(parents=True, exist_ok=True)
    student.generation_config.pad_token_id = tokenizer.pad_token_id
    student.save_pretrained(args.out, safe_serialization=True)
    for name in TOKENIZER_FILES:  # the teacher's tokenizer, unchanged
        shutil.copyfile(TEACHER / name, args.out / name)
    for name in ("config.json", "generation_config.json", "model.safetensors", *TOKENIZER_FILES):
        (args.out / name).chmod(0o644)  # transformers writes the weights through a private (0600) temporary file
    print(f"wrote {args.out}: {distilled:.0f} s of distillation, {time.time() - started:.0f} s in all")


if __name__ == "__main__":
    main()
