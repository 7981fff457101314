"""Run the protocol in a separate process with a timeout; the parent never loses results.

The child is forked by a pre-warmed zygote (bench/zygote.py), not a multiprocessing child, so
it works under any Hydra launcher (joblib's loky workers cannot spawn multiprocessing
children) and costs no import time after the first grid point. It gets the parent's
CUDA_VISIBLE_DEVICES, reads its config from ``OUT_DIR/bench_config.json`` and writes
``result.json`` after every phase. Whatever happens to it (exception, out-of-memory kill,
timeout, Ctrl-C, the zygote killed under it), the parent reads the last saved state once the
child is gone and records how it ended.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from pathlib import Path

from mlflow_energy.bench import stages
from mlflow_energy.bench.child import REQUEST_FILE
from mlflow_energy.bench.interrupt import STOP, StopRequest
from mlflow_energy.bench.processes import merge_processes, process_folder
from mlflow_energy.bench.result import RESULT_FILE, BenchResult, ResultFileError, Status
from mlflow_energy.bench.summary import conclude
from mlflow_energy.bench.zygote import INTERRUPTED, ORPHANED, TIMED_OUT, ChildEnd, Zygote
from mlflow_energy.config import RunConfig, as_dict, config_hash, point_hash

_ZYGOTE = Zygote()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel's out-of-memory killer sends this)" if name == "SIGKILL" else ""
        return f"the benchmark process was killed by {name}{hint}"
    return f"the benchmark process exited with code {code}"


def _stop_cause(why: str, config: RunConfig, phase: str, stop: StopRequest) -> str:
    """The error of a child the parent stopped (it replaces the SystemExit the child recorded)."""
    return {
        TIMED_OUT: f"timed out after bench.timeout_s={config.bench.timeout_s:g} s during {phase}",
        INTERRUPTED: f"interrupted ({stop.cause}) during {phase}",
        ORPHANED: f"the benchmark's zygote process died during {phase}, so the benchmark was stopped",
    }[why]


def prepare(processes: int) -> None:
    """Standby benchmark processes that do their imports now, for the next run's ``processes``
    (while a single run's command checks its configuration; in a sweep, before a point's first
    process and while it logs the point before): one for each where the machine has 4 cores per
    standby, else one. (Each import keeps a core busy for seconds; on a small machine more of
    them would slow the work beside them.) The zygote starts with them where it is not running."""
    _ZYGOTE.keep_standbys(max(1, min(processes, (os.cpu_count() or 1) // 4)), _visible_gpus())


def _visible_gpus() -> dict[str, str | None]:
    """The GPUs of this call (a sweep job's lease sets them), not those the zygote started with."""
    return {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}


def planned_processes(scenario: str, processes: int) -> int:
    """How many benchmark processes a run plans: bench.processes for a batch run, else one."""
    return processes if scenario == "batch" else 1


def run_isolated(config: RunConfig, out_dir: Path, stop: StopRequest = STOP,
                 command_stages: dict[str, float] | None = None) -> BenchResult:  # fmt: skip
    """The run's result: from one benchmark process, or from ``bench.processes`` of them one
    after another (a batch run), merged (bench/processes.py). A process that does not finish
    ends the run there, FAILED, with what the processes before it measured. Where the first
    process measured no energy source (its headline is CodeCarbon's estimate), the run stops
    after ``bench.estimate_processes`` (1): more would repeat a model of the machine, not a
    measurement. Its stages include the time spent outside the processes' own
    (``stages.BETWEEN``) and the command's ``command_stages`` before it."""
    started = time.monotonic()
    result = _run_processes(config, out_dir, stop)
    outside = time.monotonic() - started - sum(result.stages_s.values())
    result.stages_s[stages.BETWEEN] = max(0.0, outside)
    result.stages_s.update(command_stages or {})
    result.write(out_dir)
    return result


def _run_processes(config: RunConfig, out_dir: Path, stop: StopRequest) -> BenchResult:
    planned = planned_processes(config.scenario, config.bench.processes)
    if planned == 1:
        return _run_process(config, out_dir, stop)
    prepare(planned)  # a sweep's point: its processes import at once, before the first measures
    (out_dir / RESULT_FILE).unlink(missing_ok=True)
    results: list[BenchResult] = []
    for k in range(1, planned + 1):
        # The perplexity is the model's, not the process's: evaluated once, by the first process.
        # The GPU cools down once, before the first process: the others follow it as windows follow windows.
        quality = dataclasses.replace(config.quality, enabled=config.quality.enabled and k == 1)
        bench = config.bench if k == 1 else dataclasses.replace(config.bench, cooldown_s=0.0, cooldown_below_c=None)
        process_config = dataclasses.replace(config, quality=quality, bench=bench)
        results.append(_run_process(process_config, process_folder(out_dir, k), stop, fresh=True))
        if results[-1].status != Status.FINISHED or (_estimate_only(results[0])
                                                     and k >= config.bench.estimate_processes):
            break
    return merge_processes(results, config, out_dir, planned)


def _estimate_only(result: BenchResult) -> bool:
    return result.assessment is not None and result.assessment.headline == "estimate"


def _run_process(config: RunConfig, out_dir: Path, stop: StopRequest, fresh: bool = False) -> BenchResult:
    """The child's result, completed with the cause when it did not finish. A result the child
    finished stays finished, whatever happened after. ``fresh``: a new interpreter, not a fork."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).unlink(missing_ok=True)
    (out_dir / REQUEST_FILE).write_text(json.dumps(as_dict(config), indent=2))
    zygote_error = None
    try:
        ended = _ZYGOTE.run(out_dir, _visible_gpus(), config.bench.timeout_s, stop, fresh)
    except (RuntimeError, OSError) as exc:  # the zygote died before the child started: the next run starts a new one
        _ZYGOTE.close()
        ended, zygote_error = ChildEnd(1), f"the benchmark process could not be started ({exc})"
    try:
        result = BenchResult.read(out_dir)
    except ResultFileError:  # died before its first save
        result = BenchResult(config, config_hash(config), point_hash(config), status=Status.FAILED)
    error = (_stop_cause(ended.stopped, config, result.phase, stop) if ended.stopped
             else result.error or zygote_error or f"{_describe_exit(ended.code)} during {result.phase}")  # fmt: skip
    return close_unfinished(result, error, out_dir)


def close_unfinished(result: BenchResult, error: str, out_dir: Path) -> BenchResult:
    """A result saved to ``out_dir``, FAILED with ``error`` when its benchmark did not finish (a
    finished one stays finished, whatever happened after), its figures summarised from what was
    measured."""
    if result.status != Status.FINISHED:
        result.status = Status.FAILED
        result.error = error
    if result.summary is None:  # killed before it could summarise what it had measured
        conclude(result, [])
    result.write(out_dir)
    return result
