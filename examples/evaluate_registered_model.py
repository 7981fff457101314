"""Re-check a registered model's energy with mlflow.models.evaluate and the `energy` evaluator.

    python examples/evaluate_registered_model.py [--name tiny-chat] [--alias efficient]
        [--experiment mlflow-energy] [--tracking-uri sqlite:///mlflow.db] [--rows 8] [--batch-size 1]

When models:/NAME@ALIAS does not exist yet, it is made first as docs/how-to/register.md shows: a quick
measurement of the shipped tiny model (only when the experiment holds no measurement run yet),
then `mlflow-energy register`. The model is then evaluated on the shipped prompts with
evaluators=["energy"], in the experiment EXPERIMENT-evaluations, and the figures are printed
beside the ones the version was registered with.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from mlflow_energy.inference.prompts import SHIPPED_PROMPTS, read_prompt_file
from mlflow_energy.store import filters, names
from mlflow_energy.store.reads import hardware_class

FIGURES = [
    (names.ENERGY_PER_TOKEN, "J/token"),
    (names.ENERGY_PER_REQUEST, "J/request"),
    (names.WH_PER_1K_REQUESTS, "Wh/1k requests"),
    (names.REQUEST_P50, "s/request p50"),
    (names.REQUEST_P90, "s/request p90"),
    (names.REQUESTS, "requests measured"),
    (names.GENERATED_TOKENS, "tokens generated"),
]


def cli(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "mlflow_energy", *args])
    if done.returncode:
        raise SystemExit(done.returncode)  # the CLI has said why in one sentence; a traceback would add nothing


def ensure_registered(client: MlflowClient, args: argparse.Namespace) -> None:
    """models:/NAME@ALIAS: measured and registered first when it does not exist."""
    try:
        client.get_model_version_by_alias(args.name, args.alias)
        return
    except Exception:  # no such model or alias yet
        pass
    experiment = client.get_experiment_by_name(args.experiment)
    measured = experiment is not None and client.search_runs(
        [experiment.experiment_id], filters.FINISHED_MEASUREMENTS, max_results=1
    )
    if not measured:
        print(f"No measurement in {args.experiment!r}: measuring the shipped tiny model first.")
        cli("run", "bench=quick", "quality=off", f"tracking.uri={args.tracking_uri}",
            f"tracking.experiment={args.experiment}")  # fmt: skip
    cli("register", "--experiment", args.experiment, "--name", args.name, "--alias", args.alias,
        "--tracking-uri", args.tracking_uri)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="tiny-chat")
    parser.add_argument("--alias", default="efficient")
    parser.add_argument("--experiment", default="mlflow-energy")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--rows", type=int, default=8, help="shipped prompts to evaluate on")
    parser.add_argument("--batch-size", type=int, default=1, help="rows per predict call (one measured window)")
    args = parser.parse_args()
    client = MlflowClient(tracking_uri=args.tracking_uri)
    ensure_registered(client, args)
    version = client.get_model_version_by_alias(args.name, args.alias)

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(f"{args.experiment}-evaluations")  # kept apart from the measurement runs
    prompts = pd.DataFrame({"prompt": read_prompt_file(SHIPPED_PROMPTS)[: args.rows]})
    with mlflow.start_run(run_name=f"evaluate {args.name}@{args.alias} (version {version.version})") as run:
        result = mlflow.models.evaluate(
            f"models:/{args.name}@{args.alias}", prompts, model_type="text", evaluators=["energy"],
            evaluator_config={"energy": {"batch_size": args.batch_size}},
        )  # fmt: skip
    evaluation = client.get_run(run.info.run_id)
    tags = evaluation.data.tags

    print(f"\n{args.name}@{args.alias} (version {version.version}) on {len(prompts)} prompts, "
          f"batch {args.batch_size}: run {run.info.run_id}")  # fmt: skip
    for key, label in FIGURES:
        value = result.metrics.get(key)
        print(f"  {label:<18} {'not logged' if value is None else f'{value:.4g}'}")
    print(f"  {'headline':<18} {tags.get(names.TAG_HEADLINE, 'no energy figure')}")
    sources = ", ".join(f"{d}:{tags.get(names.TAG_SOURCE_PREFIX + d)}" for d in ("gpu", "cpu", "ram"))
    print(f"  {'sources':<18} {sources}")
    print(f"  {'trust':<18} {tags.get(names.TAG_TRUST)}")
    registered_on, here = version.tags.get(names.VERSION_HARDWARE), hardware_class(evaluation)
    print(f"Registered with: {names.ENERGY_PER_TOKEN} {version.tags.get('energy.j_per_token')}, measured on "
          f"{registered_on}; evaluated on {here}{'' if here == registered_on else ' (other hardware)'}. The benchmark "
          "measures fixed-length generate calls; this evaluation measures whole predict calls on real prompts, "
          "which stop at the end of a story: expect the figures to differ.")  # fmt: skip


if __name__ == "__main__":
    main()
