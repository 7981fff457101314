"""Batch against serving, from sweep folders: one Markdown row per grid point with the figures
both scenarios share (GPU J per output token, requests/s, output tokens/s, p90 request latency).

    python benchmarks/serving_table.py multirun/<batch sweep> multirun/<serving sweep>

Batch rows count a generate call of ``batch_size`` prompts as that many requests; serving rows
count the requests that completed inside the steady-state windows.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HEADER = ("| scenario | point | J/output token, headline [95%] | GPU J/output token | J/request | requests/s | "
          "output tokens/s | p90 request latency s | GPU mean W | GPU idle W | windows |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def _point(result: dict) -> str:
    config = result["config"]
    if config.get("scenario") == "serving":
        s = config["serving"]
        rate = f", {s['request_rate']:g} requests/s" if s.get("request_rate") else ""
        return f"concurrency {s['concurrency']}{rate}, up to {s['max_tokens']} tokens"
    w = config["workload"]
    return f"batch {w['batch_size']}, {w['prompt_tokens']} + {w['new_tokens']} tokens"


def row(result: dict) -> str:
    s = result["summary"]
    interval = (f" [{s['energy_j_per_token_ci95_low']:.3f}-{s['energy_j_per_token_ci95_high']:.3f}]"
                if s.get("energy_j_per_token_ci95_low") else "")  # fmt: skip
    gpu_per_token = s["energy_gpu_j"] / s["measurement_generated_tokens"] if s.get("energy_gpu_j") else None
    cells = [result["config"].get("scenario", "batch"), _point(result), _num(s.get("energy_j_per_token"), 3) + interval,
             _num(gpu_per_token, 3), _num(s.get("energy_j_per_request"), 2),
             _num(s.get("throughput_requests_per_s"), 2), _num(s.get("throughput_tokens_per_s"), 0),
             _num(s.get("latency_request_s_p90"), 2),
             _num(s.get("power_gpu_mean_w"), 0), _num(s.get("energy_gpu_idle_w"), 0),
             str(s.get("measurement_repetitions"))]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders (multirun/<date>/<time>)")
    args = parser.parse_args()
    print(HEADER)
    for sweep in args.sweeps:
        for path in sorted(sweep.glob("*/result.json"), key=lambda p: int(p.parent.name)):
            result = json.loads(path.read_text())
            if result.get("summary") and result["summary"].get("measurement_generated_tokens"):
                print(row(result))
            else:
                print(f"| {result['config'].get('scenario', 'batch')} | {_point(result)} | failed: "
                      f"{(result.get('error') or '')[:120]} |")  # fmt: skip


if __name__ == "__main__":
    main()
