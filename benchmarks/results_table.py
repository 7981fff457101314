"""The results-page table from a sweep folder: one row per grid point, GPU figures of the GPUs
the model ran on (read per GPU from each result.json, so a neighbour GPU never counts).

    python benchmarks/results_table.py multirun/2026-11-26/09-01-35

Prints Markdown: tokens/s, GPU J/token gross and net of idle, TTFT, mean GPU power,
compilation time, and the override that reproduces each row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def used_gpus(result: dict) -> list[str]:
    if result["config"]["model"].get("device_map"):
        return sorted(result["repetitions"][0]["measurement"]["gpu_j"])
    return [result["device"].partition(":")[2] or "0"]


def row(result: dict, overrides: str) -> str:
    s = result["summary"]
    compile_s = f"{s['latency_compile_s']:.0f}" if s.get("latency_compile_s") else "-"
    speed, ttft_ms = f"{s['throughput_tokens_per_s']:,.0f}", f"{s['latency_ttft_s_p50'] * 1000:.1f}"
    if not result["environment"]["gpus"]:  # a CPU run: no GPU figures to show
        return f"| {overrides} | {speed} | - | - | {ttft_ms} | - | - | {compile_s} |"
    gpus = used_gpus(result)
    reps = [r for r in result["repetitions"] if not r["measurement"]["problems"]]
    tokens = sum(len(r["request_s"]) for r in reps) * result["tokens_per_call"]
    seconds = sum(r["measurement"]["duration_s"] for r in reps)
    gpu_j = sum(r["measurement"]["gpu_j"][g] for r in reps for g in gpus)
    idle = result["idle"]
    idle_w = sum(idle["gpu_j"][g] for g in gpus) / idle["duration_s"]
    return (f"| {overrides} | {speed} | {gpu_j / tokens:.3f} | {(gpu_j - idle_w * seconds) / tokens:.3f} | "
            f"{ttft_ms} | {gpu_j / seconds:.0f} | {idle_w:.0f} | {compile_s} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args()
    print("| grid point (overrides) | tokens/s | GPU J/token gross | GPU J/token net | TTFT p50 ms "
          "| GPU W | idle W | compile s |")
    print("|---|---|---|---|---|---|---|---|")
    for outcome_path in sorted(args.sweep_dir.rglob("mlflow_energy_outcome.json"),
                               key=lambda p: json.loads(p.read_text())["num"]):  # fmt: skip
        outcome = json.loads(outcome_path.read_text())
        result_path = outcome_path.parent / "result.json"
        if outcome["status"] == "finished" and result_path.is_file():
            print(row(json.loads(result_path.read_text()), outcome["name"]))


if __name__ == "__main__":
    main()
