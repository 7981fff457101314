"""Measure your own transformers loop with mlflow_energy.track(): the shipped tiny-stories model,
greedy generation prompt by prompt, the prefill and the decode as named windows, logged to an
MLflow run with the same metric names as `mlflow-energy run`.

    python examples/track_own_loop.py [--tracking-uri sqlite:///mlflow.db] [--device cpu|cuda] [--new-tokens 48]
"""

from __future__ import annotations

import argparse

import mlflow
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

import mlflow_energy

PROMPTS = ["Once upon a time, there was a little dog", "The girl found a red ball", "Tom and Sue went to the park"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--new-tokens", type=int, default=48)
    args = parser.parse_args()
    folder = mlflow_energy.shipped_model_path("tiny-stories")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).to(args.device).eval()

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("my-own-loop")
    with mlflow.start_run(run_name="tiny-stories, my loop") as run, torch.inference_mode():
        with mlflow_energy.track(requests=len(PROMPTS)) as t:
            for prompt in PROMPTS:
                ids = tokenizer(prompt, return_tensors="pt").input_ids.to(args.device)
                with t.window("prefill"):
                    model(ids)
                with t.window("decode"):
                    out = model.generate(ids, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                         do_sample=False, pad_token_id=tokenizer.eos_token_id)  # fmt: skip
                t.add_tokens(out.shape[1] - ids.shape[1])
        metrics = mlflow.get_run(run.info.run_id).data.metrics  # logged when the block ended
    print(f"run {run.info.run_id}: {metrics['measurement/generated_tokens']:.0f} tokens, "
          f"{metrics['energy/j_per_token']:.4g} J/token, {metrics['energy/j_per_request']:.4g} J/request "
          f"({mlflow.get_run(run.info.run_id).data.tags['mlflow_energy.headline']})")


if __name__ == "__main__":
    main()
