"""Evaluate a model behind an OpenAI-compatible server (`transformers serve`, vLLM, SGLang) with
mlflow.genai.evaluate: a quality scorer and mlflow-energy's energy scorer side by side. Each
request is a trace (mlflow.openai.autolog()) whose LLM span carries the GPU energy it used
(mlflow_energy.autolog()). Run it on the server's machine, so that the energy counters it reads
are the server's GPUs'; where none is readable, the energy columns say so instead of a number.

    python examples/evaluate_served_energy.py --base-url http://127.0.0.1:8000/v1 [--model NAME]
        [--rows 8] [--max-tokens 32] [--gpus 0] [--tracking-uri sqlite:///mlflow.db]

The quality scorer asks whether the story names the animal its prompt names. Needs the OpenAI
client: pip install -e ".[serving]".
"""

from __future__ import annotations

import argparse
import os

import mlflow
import openai
import pandas as pd
from mlflow.genai.scorers import scorer
from track_openai_client import served_model  # the example beside this one (this folder is on sys.path)

import mlflow_energy

ANIMALS = ["cat", "dog", "bird", "fish", "fox", "bear", "frog", "owl"]


@scorer
def names_the_animal(inputs: dict, outputs: str) -> bool:
    """Quality: the story mentions the animal the prompt asked about."""
    return inputs["animal"] in outputs.lower()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the server's OpenAI base URL, ending in /v1")
    parser.add_argument("--model", help="the model id requests name (default: the server's only model)")
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--gpus", type=int, nargs="*", help="CUDA indices of the server's GPUs (default: all)")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    args = parser.parse_args()
    client = openai.OpenAI(base_url=args.base_url, api_key=os.environ.get("OPENAI_API_KEY", "unused"))
    model = args.model or served_model(client, args.base_url)

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("served-model-evaluation")
    mlflow.openai.autolog()  # a trace per request, its LLM span with the server's token counts
    mlflow_energy.autolog(gpus=args.gpus)  # the GPU energy of each LLM span

    def predict(animal: str) -> str:
        answer = client.completions.create(model=model, prompt=f"Once upon a time, a {animal}",
                                           max_tokens=args.max_tokens)  # fmt: skip
        return answer.choices[0].text

    rows = [{"inputs": {"animal": ANIMALS[i % len(ANIMALS)]}} for i in range(args.rows)]
    result = mlflow.genai.evaluate(data=pd.DataFrame(rows), predict_fn=predict,
                                   scorers=[names_the_animal, mlflow_energy.energy])  # fmt: skip
    print(f"evaluation run {result.run_id}:")
    for name, value in sorted(result.metrics.items()):
        print(f"  {name} = {value:.4g}")
    if not any(name.startswith("j_per_request/energy") for name in result.metrics):
        reason = result.result_df["j_per_request/energy/rationale"].iloc[0]
        print(f"  energy: {reason}")


if __name__ == "__main__":
    main()
