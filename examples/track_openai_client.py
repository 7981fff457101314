"""Measure a client loop against an OpenAI-compatible server (`transformers serve`, vLLM, TGI,
SGLang) with mlflow_energy.track(): what the machine drew while the server answered, per request
and per generated token, gross and net of an idle baseline. Run it on the server's machine, so
that the meter sees the server's GPUs (on a CPU-only machine: CodeCarbon's CPU and RAM estimates).

    python examples/track_openai_client.py --base-url http://127.0.0.1:8000/v1 [--model NAME]
        [--requests 20] [--max-tokens 128] [--idle-s 5] [--tracking-uri sqlite:///mlflow.db]

Requests go to the completions API (/v1/completions), which every one of these servers has and
which a base model like the shipped tiny-stories answers (it has no chat template). --model
defaults to the server's only model. Needs the OpenAI client: pip install -e ".[serving]".
"""

from __future__ import annotations

import argparse
import os

import mlflow
import openai

import mlflow_energy


def served_model(client: openai.OpenAI, base_url: str) -> str:
    """The one model the server lists; SystemExit with one sentence otherwise."""
    try:
        listed = [m.id for m in client.models.list()]
    except openai.APIConnectionError:
        raise SystemExit(f"nothing answers at {base_url}; start the server first (examples/README.md).") from None
    except openai.APIStatusError as exc:
        raise SystemExit(f"the server at {base_url} answered GET /models with HTTP {exc.status_code}; "
                         "name the model with --model.") from None  # fmt: skip
    if len(listed) != 1:
        raise SystemExit(f"the server at {base_url} lists {', '.join(listed) or 'no model'}; name one with --model.")
    return listed[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True, help="the server's OpenAI base URL, ending in /v1")
    parser.add_argument("--model", help="the model id requests name (default: the server's only model)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--idle-s", type=float, default=5.0, help="idle baseline before the requests")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    args = parser.parse_args()
    # Local servers ignore the key; the client refuses to start without one.
    client = openai.OpenAI(base_url=args.base_url, api_key=os.environ.get("OPENAI_API_KEY", "unused"))
    model = args.model or served_model(client, args.base_url)  # before any run: no run left behind when it fails

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("serving-client")
    with mlflow.start_run(run_name=f"{model} via {args.base_url}") as run:
        mlflow.log_params({"model": model, "requests": args.requests, "max_tokens": args.max_tokens})
        with mlflow_energy.track(requests=args.requests, idle_s=args.idle_s) as t:  # idle first: net energy
            for i in range(args.requests):
                with t.window("request"):
                    answer = client.completions.create(model=model, prompt=f"Tell a short story number {i}.",
                                                       max_tokens=args.max_tokens)  # fmt: skip
                    # The server's own count: text chunks and re-tokenized text both miscount.
                    t.add_tokens(answer.usage.completion_tokens if answer.usage else 0)
    m = mlflow.get_run(run.info.run_id).data.metrics
    tokens, net = m.get("measurement/generated_tokens"), m.get("energy/net_j")
    print(f"run {run.info.run_id}: {args.requests} requests, {tokens or 0:.0f} tokens; "
          f"{m.get('energy/j_per_request', float('nan')):.4g} J/request, "
          f"{m.get('energy/j_per_token', float('nan')):.4g} J/token")  # fmt: skip
    if net is not None and tokens:
        print(f"net of idle ({m['energy/idle_w']:.4g} W): {net / args.requests:.4g} J/request, "
              f"{net / tokens:.4g} J/token")  # fmt: skip


if __name__ == "__main__":
    main()
