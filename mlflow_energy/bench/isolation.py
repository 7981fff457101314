"""Run the protocol in a spawned child process with a timeout; the parent never loses results.

The child writes ``result.json`` after every phase. Whatever happens to it (exception, out of
memory kill, timeout), the parent reads the last saved state and records how it ended.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import sys
from pathlib import Path
from typing import Any

from mlflow_energy.bench.result import RESULT_FILE, BenchResult
from mlflow_energy.bench.summary import summarize
from mlflow_energy.config import RunConfig, as_dict, config_hash, to_run_config

LOG_FORMAT = "[mlflow-energy %(asctime)s] %(message)s"


def _child(config_data: dict[str, Any], out_dir: str) -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, datefmt="%H:%M:%S", stream=sys.stderr)
    from mlflow_energy.bench.protocol import run_protocol

    folder = Path(out_dir)
    try:
        run_protocol(to_run_config(config_data), folder, lambda r: r.write(folder))
    except BaseException:
        logging.getLogger("mlflow_energy.bench").exception("benchmark failed")
        sys.exit(1)


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel's out-of-memory killer sends this)" if name == "SIGKILL" else ""
        return f"the benchmark process was killed by {name}{hint}"
    return f"the benchmark process exited with code {code}"


def run_isolated(config: RunConfig, out_dir: Path) -> BenchResult:
    """The child's result, completed with the cause when it did not finish."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).unlink(missing_ok=True)
    process = multiprocessing.get_context("spawn").Process(
        target=_child, args=(as_dict(config), str(out_dir)), name="mlflow-energy-bench"
    )
    process.start()
    process.join(config.bench.timeout_s)
    timed_out = process.is_alive()
    if timed_out:
        process.terminate()
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
    try:
        result = BenchResult.read(out_dir)
    except FileNotFoundError:  # died before its first save
        result = BenchResult(config=as_dict(config), config_hash=config_hash(config), status="failed")
    if timed_out:
        result.status = "failed"
        result.error = f"timed out after bench.timeout_s={config.bench.timeout_s:g} s during {result.phase}"
    elif result.status != "finished":
        result.status = "failed"
        result.error = result.error or f"{_describe_exit(process.exitcode)} during {result.phase}"
    if result.summary is None:  # killed before it could summarise what it had measured
        w = config.workload
        result.summary = summarize(result, [], w.new_tokens, w.batch_size)
    result.write(out_dir)
    return result
