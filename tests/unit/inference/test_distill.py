"""The distilled student of the shipped tiny-stories model: scripts/distill_tiny.py writes a
loadable 2-layer model, and the shipped student is better than where distillation started (the
teacher with its layers 1 and 2 dropped)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from processes import REPO

ROOT = REPO
SCRIPT = ROOT / "scripts" / "distill_tiny.py"
SHIPPED = ROOT / "mlflow_energy" / "inference" / "shipped"
TEACHER, STUDENT = SHIPPED / "tiny-stories", SHIPPED / "tiny-stories-distilled"
HELDOUT = ROOT / "mlflow_energy" / "inference" / "data" / "heldout.txt"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def heldout_ids(tokenizer, tokens: int = 2048) -> torch.Tensor:
    """The first ``tokens`` of the held-out stories, each line followed by EOS (as the scripts encode)."""
    ids: list[int] = []
    for line in HELDOUT.read_text().splitlines():
        ids += tokenizer(line)["input_ids"] + [tokenizer.eos_token_id]
        if len(ids) >= tokens:
            break
    return torch.tensor(ids[:tokens])


@torch.no_grad()
def perplexity(model, ids: torch.Tensor) -> float:
    context = model.config.max_position_embeddings
    chunks = [ids[i : i + context] for i in range(0, len(ids) - 1, context) if len(ids[i : i + context]) > 1]
    nll = sum(model(c[None], labels=c[None], use_cache=False).loss.item() * (len(c) - 1) for c in chunks)
    return math.exp(nll / sum(len(c) - 1 for c in chunks))


def generates(model, tokenizer, new_tokens: int = 6) -> None:
    prompt = tokenizer("Once upon a time", return_tensors="pt", return_token_type_ids=False)  # generate refuses them
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                             use_cache=True, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    assert out.shape == (1, prompt["input_ids"].shape[1] + new_tokens)
    assert tokenizer.decode(out[0], skip_special_tokens=True).startswith("Once upon a time")


def test_fast_mode_writes_a_loadable_two_layer_student(tmp_path: Path) -> None:
    out = tmp_path / "student"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--fast", "--out", str(out)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = re.search(r"perplexity of the student after distillation (\S+)", proc.stdout)
    assert after and math.isfinite(float(after[1])), proc.stdout
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert model.config.num_hidden_layers == len(model.model.layers) == 2
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1]
    for name in TOKENIZER_FILES:
        assert (out / name).read_bytes() == (TEACHER / name).read_bytes()
    generates(model, tokenizer)


def test_the_shipped_student_beats_the_teacher_with_its_middle_layers_dropped() -> None:
    student = AutoModelForCausalLM.from_pretrained(STUDENT).eval()
    tokenizer = AutoTokenizer.from_pretrained(STUDENT)
    dropped = AutoModelForCausalLM.from_pretrained(TEACHER).eval()
    teacher_parameters = dropped.num_parameters()
    assert student.config.num_hidden_layers == len(student.model.layers) == 2
    assert student.num_parameters() < teacher_parameters
    for name in TOKENIZER_FILES:
        assert (STUDENT / name).read_bytes() == (TEACHER / name).read_bytes()
    generates(student, tokenizer)

    # The student's starting point: the teacher's layers 0 and 3, renumbered.
    del dropped.model.layers[1:3]
    dropped.config.num_hidden_layers = 2
    for position, layer in enumerate(dropped.model.layers):
        layer.self_attn.layer_idx = position
    ids = heldout_ids(tokenizer)
    distilled, initial = perplexity(student, ids), perplexity(dropped, ids)
    assert distilled < initial * 0.8, (distilled, initial)
