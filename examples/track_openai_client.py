"""Measure a client loop against an OpenAI-compatible server (vLLM, `transformers serve`, TGI)
with mlflow_energy.track(): what the server's GPUs drew while it answered, per request and per
generated token. Run it on the server's machine so the meter sees the server's GPUs.

    python examples/track_openai_client.py --base-url http://127.0.0.1:8000/v1 --model NAME [--requests 20]
"""

from __future__ import annotations

import argparse
import json
import urllib.request

import mlflow

import mlflow_energy


def complete(base_url: str, model: str, prompt: str, max_tokens: int) -> int:
    """One chat completion; the tokens the server says it generated."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    request = urllib.request.Request(f"{base_url.rstrip('/')}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=300) as response:
        return int(json.load(response)["usage"]["completion_tokens"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    args = parser.parse_args()
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("serving-client")
    with mlflow.start_run(run_name=f"{args.model} via {args.base_url}") as run:
        mlflow.log_params({"model": args.model, "requests": args.requests, "max_tokens": args.max_tokens})
        with mlflow_energy.track(requests=args.requests, idle_s=5) as t:  # idle first: net energy of serving
            for i in range(args.requests):
                with t.window("request"):
                    prompt = f"Tell a short story number {i}."
                    t.add_tokens(complete(args.base_url, args.model, prompt, args.max_tokens))
    metrics = mlflow.get_run(run.info.run_id).data.metrics
    print(f"run {run.info.run_id}: {metrics.get('energy/j_per_request', float('nan')):.4g} J/request, "
          f"{metrics.get('energy/j_per_token', float('nan')):.4g} J/token")


if __name__ == "__main__":
    main()
