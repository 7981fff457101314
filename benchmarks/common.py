"""Shared set-up for the benchmark scripts: the same model, batch and generate call as the tool."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.config import ModelConfig, WorkloadConfig
from mlflow_energy.inference import generation
from mlflow_energy.inference.hardware_support import resolve_device
from mlflow_energy.inference.models import load_model, load_tokenizer, resolve_model
from mlflow_energy.inference.prompts import make_batch


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="tiny", help="shipped config name, folder or hub id (default tiny)")
    parser.add_argument("--weights", default="random", choices=["random", "pretrained"])
    parser.add_argument("--dtype", default=None, help="default: float32 on CPU, bfloat16 on GPU")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)


@dataclass
class Workload:
    device: str
    dtype: str
    tokens_per_call: int
    call: Callable[[], Any]
    sync: Callable[[], None]
    description: str

    def timed(self, calls: int) -> float:
        """Seconds for ``calls`` generate calls, synchronized at both ends."""
        self.sync()
        start = time.perf_counter()
        for _ in range(calls):
            self.call()
        self.sync()
        return time.perf_counter() - start


def build_workload(args: argparse.Namespace) -> Workload:
    import torch

    device = resolve_device(args.device)
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    model_config = ModelConfig(name=args.model, weights=args.weights, dtype=dtype)
    workload = WorkloadConfig(batch_size=args.batch, prompt_tokens=args.prompt_tokens, new_tokens=args.new_tokens)
    source = resolve_model(model_config)
    tokenizer = load_tokenizer(source, model_config)
    model = load_model(source, model_config, device).model
    batch = make_batch(workload, tokenizer, model.config.vocab_size, device, seed=0)
    gen_config = generation.fixed_length_config(model, tokenizer, args.new_tokens)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return Workload(
        device=device,
        dtype=dtype,
        tokens_per_call=args.batch * args.new_tokens,
        call=lambda: generation.generate(model, batch, gen_config),
        sync=sync,
        description=(
            f"{args.model} ({args.weights}, {dtype}) on {device}, batch {args.batch}, "
            f"{args.prompt_tokens} prompt + {args.new_tokens} new tokens"
        ),
    )


def run_tool(folder: Path, overrides: list[str]) -> dict:
    """`mlflow-energy run` in a subprocess, its files and store in ``folder``: its result.json.
    Exits with the tool's stderr when it fails."""
    command = [sys.executable, "-m", "mlflow_energy", "run", f"hydra.run.dir={folder}/out",
               f"tracking.uri=sqlite:///{folder}/mlflow.db", *overrides]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"the tool failed:\n{proc.stderr[-3000:]}")
    return json.loads((folder / "out" / "result.json").read_text())
