"""A run of several benchmark processes: its interval is where a repeat of the run lands (checked
on simulated runs whose every process has its own level, as on a GPU), and its processes'
results become one result."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from mlflow_energy.bench.processes import merge_processes, process_folder
from mlflow_energy.bench.result import BenchResult, QualityWindow, RepetitionWindow, Status
from mlflow_energy.bench.summary import conclude
from mlflow_energy.config import BenchConfig, RunConfig, WorkloadConfig, config_hash
from mlflow_energy.meter.measurement import Measurement

TRUE_J_PER_TOKEN = 0.1
TOKENS_PER_CALL = 8 * 256
WORKLOAD = WorkloadConfig(batch_size=8, new_tokens=256)


def simulated_run(rng: random.Random, processes: int, windows: int = 8, between: float = 0.025,
                  within: float = 0.01) -> BenchResult:  # fmt: skip
    """A finished run whose every process sits at its own level (a 2.5% spread between processes,
    as seen on an H100 and an H200) with 1% noise between its windows."""
    result = BenchResult(RunConfig(workload=WORKLOAD, bench=BenchConfig(processes=processes)), "h")
    for process in range(1, processes + 1):
        level = TRUE_J_PER_TOKEN * rng.lognormvariate(0, between)
        for k in range(windows):
            joules = level * rng.lognormvariate(0, within) * TOKENS_PER_CALL
            m = Measurement(f"generate_{k}", 10.0 * process + k, 1.0, {"0": joules}, "nvml_counter")
            result.repetitions.append(RepetitionWindow(m, [1.0], process))
    conclude(result, [])
    return result


def cross_check_coverage(processes: int, runs: int = 400) -> float:
    """The share of (run, other run) pairs of independent runs of one point where the other
    run's J/token falls inside this run's stated 95% interval."""
    rng = random.Random(20261206)
    summaries = [simulated_run(rng, processes).summary for _ in range(runs)]
    pairs = list(zip(summaries[::2], summaries[1::2], strict=True))
    held = sum(a.energy_j_per_token_ci95_low <= b.energy_j_per_token <= a.energy_j_per_token_ci95_high
               for first, second in pairs for a, b in ((first, second), (second, first)))  # fmt: skip
    return held / (2 * len(pairs))


def test_the_default_three_processes_cover_a_repeat_of_the_run() -> None:
    assert BenchConfig().processes == 3
    assert cross_check_coverage(processes=3) >= 0.90


def test_one_process_cannot_see_the_spread_between_processes_and_says_so() -> None:
    # Its windows agree (1%) while another process sits elsewhere (2.5%): most checks fail.
    assert cross_check_coverage(processes=1) < 0.5
    result = simulated_run(random.Random(1), processes=1)
    assert result.assessment.interval == "one run's windows"


def test_the_interval_label_and_counts_of_a_run_of_processes() -> None:
    result = simulated_run(random.Random(2), processes=3)
    s = result.summary
    assert result.assessment.interval == "3 benchmark processes: where a repeat of the run lands"
    assert (s.measurement_processes, s.measurement_repetitions) == (3, 24)
    assert s.energy_j_per_token_ci95_low < s.energy_j_per_token < s.energy_j_per_token_ci95_high
    assert s.throughput_tokens_per_s_ci95_low <= s.throughput_tokens_per_s <= s.throughput_tokens_per_s_ci95_high


def process_result(k: int, window: Callable[..., Measurement], status: Status = Status.FINISHED,
                   quality: bool = False) -> BenchResult:  # fmt: skip
    """Process k's result: two generate windows on its own clock, started k seconds after the first."""
    r = BenchResult(RunConfig(workload=WorkloadConfig(batch_size=2, new_tokens=10)), "h", status=status,
                    started_ms=1_000_000 + 1000 * (k - 1))  # fmt: skip
    r.load = window("load", 0.0, 0.1, 10.0)
    r.warmup = [window("warmup_1", 0.1, 0.1, 10.0)]
    r.repetitions = [RepetitionWindow(window(f"generate_{i}", 0.2 + 0.1 * i, 0.1, 40.0 + k), [0.1]) for i in (1, 2)]
    r.quality = QualityWindow(window("quality", 0.5, 0.1, 5.0), 2.0, 100) if quality else None
    r.phase = "done" if status == Status.FINISHED else "repetition 2"
    r.error = None if status == Status.FINISHED else "timed out after bench.timeout_s=5 s during repetition 2"
    return r


def test_processes_merge_into_one_result_on_the_first_clock(tmp_path: Path, window) -> None:
    results = [process_result(1, window), process_result(2, window), process_result(3, window, quality=True)]
    for k in (1, 2, 3):
        process_folder(tmp_path, k).mkdir()
    config = RunConfig(workload=WorkloadConfig(batch_size=2, new_tokens=10))
    merged = merge_processes(results, config, tmp_path, planned=3)
    assert merged.status == Status.FINISHED and merged.config_hash == config_hash(config)
    assert [r.process for r in merged.repetitions] == [1, 1, 2, 2, 3, 3]
    assert [round(r.measurement.start_s, 3) for r in merged.repetitions] == [0.3, 0.4, 1.3, 1.4, 2.3, 2.4]
    assert len(merged.warmup) == 3 and merged.quality is not None and merged.quality.measurement.start_s == 2.5
    assert merged.summary.measurement_processes == 3
    assert BenchResult.read(tmp_path).repetitions[-1].process == 3  # saved as it is returned


def test_a_process_that_did_not_finish_fails_the_run_and_keeps_what_came_before(tmp_path: Path, window) -> None:
    results = [process_result(1, window), process_result(2, window, Status.FAILED)]
    merged = merge_processes(results, RunConfig(), tmp_path, planned=3)
    assert merged.status == Status.FAILED
    assert merged.error == "benchmark process 2 of 3: timed out after bench.timeout_s=5 s during repetition 2"
    assert len(merged.repetitions) == 4 and merged.summary.energy_total_j == pytest.approx(2 * 41 + 2 * 42)
