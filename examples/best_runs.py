"""Rank the runs of an experiment by energy per token.

    python examples/best_runs.py --experiment mlflow-energy [--tracking-uri sqlite:///mlflow.db]
"""

from __future__ import annotations

import argparse

from mlflow.tracking import MlflowClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiment", default="mlflow-energy")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    args = parser.parse_args()
    client = MlflowClient(tracking_uri=args.tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise SystemExit(f"no experiment named {args.experiment!r} in {args.tracking_uri}")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["metrics.`energy/j_per_token` ASC"],
    )
    print(f"{'run':<24} {'batch':>5} {'J/token':>10} {'net J/token':>12} {'tokens/s':>9}  sources (gpu/cpu/ram)")
    for run in runs:
        m, p, t = run.data.metrics, run.data.params, run.data.tags
        sources = "/".join(t.get(f"mlflow_energy.source.{d}", "?") for d in ("gpu", "cpu", "ram"))
        gross, net = m.get("energy/j_per_token", float("nan")), m.get("energy/net_j_per_token", float("nan"))
        speed = m.get("throughput/tokens_per_s", float("nan"))
        print(
            f"{run.info.run_name:<24} {p.get('workload.batch_size', '?'):>5} {gross:>10.4g} "
            f"{net:>12.4g} {speed:>9.1f}  {sources}"
        )


if __name__ == "__main__":
    main()
