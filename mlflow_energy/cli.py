"""Console entry point: ``mlflow-energy run [overrides]`` and the subcommands beside it."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from hydra.experimental.callback import Callback

from mlflow_energy.tracking.uris import redact_in, redact_uri

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from mlflow_energy.config import RunConfig
    from mlflow_energy.tracking.kept import KeptResult, KeptResults
    from mlflow_energy.tracking.sweep import SweepEnd, SweepState

log = logging.getLogger("mlflow_energy")

USAGE = """usage: mlflow-energy <command> [arguments]

commands:
  run [-m] [key=value ...]   measure one configuration (Hydra overrides; -m sweeps a grid)
  run --overrides "STRING"   the same, overrides in one string (how MLproject passes them)
  log OUTPUT_DIR             log a saved result folder (result.json) to MLflow again
  report --experiment NAME [--sweep ID]
                             rebuild a sweep's report (summary.csv/html, pareto.png) from the store
  register --experiment NAME --name MODEL [--sweep ID] [--metric M] [--max M=V] [--min M=V]
           [--allow-overlap]  register the most efficient qualifying run in the Model Registry; the
                             champion alias moves only when the new one is better beyond both 95%
                             intervals (--allow-overlap: on a better value)

`mlflow-energy run --help` lists the configuration groups; `mlflow-energy run --cfg job`
prints the resolved configuration without running anything.
"""

EXIT_CONFIG_ERROR = 2
EXIT_RUN_FAILED = 1
EXIT_TRACKING_ERROR = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command that Ctrl-C ended


def _fail(message: str, code: int) -> NoReturn:
    print(f"mlflow-energy: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _interrupted(message: str) -> NoReturn:
    print(f"mlflow-energy: interrupted: {message}", file=sys.stderr)
    raise SystemExit(EXIT_INTERRUPTED)


def _ui_hint(uri: str, experiment_id: str, run_id: str) -> str:
    if uri.startswith(("http://", "https://")):
        return f"{redact_uri(uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"mlflow ui --backend-store-uri {redact_uri(uri)}"


def _log_and_report(
    out_dir: Path, tracking_uri: str, experiment: str, run_name: str | None, extra_tags: dict[str, str] | None = None
) -> tuple[int, str | None]:
    """Logs the result in ``out_dir`` (once) and prints its summary: (exit code, run id)."""
    from mlflow_energy.bench.result import BenchResult
    from mlflow_energy.report.console import print_summary
    from mlflow_energy.tracking.logger import LogRequest, log_result

    result = BenchResult.read(out_dir)
    if LogRequest.read(out_dir) is None:  # the first attempt's: `log DIR --tracking-uri ELSEWHERE` must not replace it
        LogRequest(tracking_uri, experiment, run_name, extra_tags or {}).write(out_dir)
    try:
        logged = log_result(result, out_dir, tracking_uri, experiment, run_name, extra_tags)
    except Exception as exc:  # the measurement is safe on disk; say how to log it later
        print_summary(result, f"{out_dir} (not in MLflow)", None)
        message = (f"could not log to MLflow at {tracking_uri} ({type(exc).__name__}: {exc}); the result is saved "
                   f"in {out_dir}, log it later with: mlflow-energy log {out_dir}")  # fmt: skip
        print(f"mlflow-energy: error: {redact_in(message, tracking_uri)}", file=sys.stderr)
        return EXIT_TRACKING_ERROR, None
    where = f"{redact_uri(tracking_uri)}, experiment {experiment!r}, run {logged.run_id} ({logged.status})"
    if logged.already_logged:
        where += "; it was already there, nothing was logged again"
    print_summary(result, where, _ui_hint(tracking_uri, logged.experiment_id, logged.run_id))
    return (0 if result.status == "finished" else EXIT_RUN_FAILED), logged.run_id


def _checked(cfg: object) -> RunConfig:
    """The configuration and its model, checked before anything runs (ConfigError)."""
    from mlflow_energy.config import to_run_config, validate
    from mlflow_energy.inference.models import resolve_model, validate_workload_fits

    config = to_run_config(cfg)  # type: ignore[arg-type]
    validate(config)
    validate_workload_fits(resolve_model(config.model), config)
    return config


def _validated(cfg: object) -> RunConfig:
    """Checked, with its tracking store ready (TrackingError)."""
    from mlflow_energy.tracking.logger import prepare_experiment

    config = _checked(cfg)
    prepare_experiment(config.tracking.uri, config.tracking.experiment)
    return config


class OutputFolderCheck(Callback):
    """Refuses an output folder that cannot be written before Hydra writes into it and before any
    run exists (conf/config.yaml lists this callback before the sweep's, which creates a run)."""

    def on_run_start(self, config: DictConfig, **kwargs: object) -> None:
        _writable_or_fail(Path(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: object) -> None:
        _writable_or_fail(Path(config.hydra.sweep.dir), "hydra.sweep.dir")


def _writable_or_fail(folder: Path, key: str) -> None:
    from mlflow_energy.config import ConfigError, validate_output_folder

    try:
        validate_output_folder(folder, key)
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG_ERROR)


def execute(cfg: object) -> None:
    """One grid point: validate, measure in a child process, log, summarise."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mlflow_energy.bench.interrupt import STOP
    from mlflow_energy.tracking.sweep import SweepState

    STOP.install(EXIT_INTERRUPTED)  # again here: a joblib worker is a process of its own
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep_dir = Path(hydra_cfg.sweep.dir)
        sweep = SweepState.read(sweep_dir)
        if sweep is not None:
            _sweep_point(cfg, out_dir, sweep, sweep_dir, hydra_cfg.job.num, list(hydra_cfg.overrides.task))
            return
    _single_run(cfg, out_dir)


def _single_run(cfg: object, out_dir: Path) -> None:
    from mlflow_energy.bench.interrupt import STOP
    from mlflow_energy.bench.isolation import run_isolated
    from mlflow_energy.config import ConfigError, resolve_device
    from mlflow_energy.tracking.kept import wait_for_server
    from mlflow_energy.tracking.logger import TrackingError

    try:
        config = _validated(cfg)
    except (ConfigError, TrackingError) as exc:
        _fail(str(exc), EXIT_CONFIG_ERROR)
    if STOP.requested:
        _interrupted("nothing was measured or logged.")
    log.info("measuring %s on %s; files in %s", config.model.name, resolve_device(config.device), out_dir)
    run_isolated(config, out_dir)
    wait_for_server(config.tracking.uri, config.tracking.wait_s)
    code, run_id = _log_and_report(out_dir, config.tracking.uri, config.tracking.experiment, config.tracking.run_name)
    if STOP.requested:
        _interrupted(f"what was measured is kept in {out_dir}" + (f" and logged as run {run_id}." if run_id else "."))
    if code:
        raise SystemExit(code)


@dataclass
class _Job:
    """One job of a sweep (a replicate of a grid point) as the sweep records it."""

    sweep: SweepState
    sweep_dir: Path
    out_dir: Path
    num: int
    name: str  # the grid point's
    run_name: str  # the replicate's run
    point_hash: str
    replicate: int
    started: float = field(default_factory=time.time)

    @property
    def tags(self) -> dict[str, str]:
        from mlflow_energy.tracking import names

        return {names.TAG_SWEEP_ID: self.sweep.sweep_id, names.TAG_MLFLOW_PARENT: self.sweep.parent_run_id}

    def progress(self, message: str) -> None:
        where = f"point {self.num + 1} of {self.sweep.points or '?'} ({self.run_name})"
        self.sweep.progress(self.sweep_dir, f"{where}: {message}")

    def end(self, status: str, run_id: str | None, digest: str | None, message: str, error: str | None = None,
            result_dir: str | None = None, seconds: float = 0.0) -> None:  # fmt: skip
        from mlflow_energy.tracking.sweep import PointOutcome

        PointOutcome(self.num, self.name, status, run_id, digest, error, seconds, self.point_hash, self.replicate,
                     result_dir).write(self.out_dir)  # fmt: skip
        self.progress(message)


def _sweep_point(cfg: object, out_dir: Path, sweep: SweepState, sweep_dir: Path, num: int, overrides: list[str]) -> None:
    """A job never stops the sweep: whatever happens becomes its outcome, and a run or, while
    the tracking server does not answer, a result kept on disk. It logs a result an earlier
    launch kept instead of measuring again; after a Ctrl-C, the jobs that follow do not start."""
    from mlflow_energy.bench.interrupt import STOP
    from mlflow_energy.config import ConfigError, config_hash, point_hash, to_run_config
    from mlflow_energy.tracking.kept import KeptResults, wait_for_server
    from mlflow_energy.tracking.sweep import point_name, replicate_run_name

    if STOP.requested:
        return
    typed = to_run_config(cfg)  # before validation: a refused job still knows its point and replicate
    name = point_name(overrides, sweep.swept_keys)
    run_name = replicate_run_name(name, typed.sweep.replicate, sweep.replicates)
    job = _Job(sweep, sweep_dir, out_dir, num, name, run_name, point_hash(typed), typed.sweep.replicate)
    try:
        config = _checked(cfg)
    except ConfigError as exc:
        _refuse(job, overrides, str(exc), wait_for_server(sweep.tracking_uri, typed.tracking.wait_s))
        return
    digest, kept = config_hash(config), KeptResults(Path(sweep.kept_dir))
    online = wait_for_server(sweep.tracking_uri, config.tracking.wait_s)
    if _logged_from_disk(job, config, digest, kept, online):
        return
    if config.bench.resume and _measured_before(job, digest, kept.get(digest), online):
        return
    _measure(job, config, digest, kept)


def _refuse(job: _Job, overrides: list[str], error: str, online: bool) -> None:
    """A job refused before measuring: a FAILED run with its error (none while the server does not answer)."""
    from mlflow_energy.tracking import names
    from mlflow_energy.tracking.kept import store_failures
    from mlflow_energy.tracking.logger import log_refused
    from mlflow_energy.tracking.sweep import FAILED

    tags = {**job.tags, names.TAG_POINT_HASH: job.point_hash, names.TAG_REPLICATE: str(job.replicate)}
    run_id = None
    if online:
        try:
            run_id = log_refused(job.sweep.tracking_uri, job.sweep.experiment_id, job.run_name, overrides, error, tags)
        except store_failures():  # the next launch refuses it again and logs that
            pass
    job.end(FAILED, run_id, None, f"refused: {error}", error)


def _logged_from_disk(job: _Job, config: RunConfig, digest: str, kept: KeptResults, online: bool) -> bool:
    """A result an earlier launch measured but could not log is logged now instead of measured
    again (or, while the server does not answer, stays kept): True when that ends the job. An
    unfinished one is logged as what it is (FAILED), and the point is measured again."""
    from mlflow_energy.tracking.kept import KeptResult
    from mlflow_energy.tracking.sweep import FINISHED, NOT_LOGGED

    held = kept.get(digest)
    if held is None or held.run_id is not None:
        return False
    result = held.read()
    if result is None:  # its folder was removed: measure the point again
        return False
    run_id = None
    if online:
        _, run_id = _log_and_report(Path(held.out_dir), config.tracking.uri, config.tracking.experiment, job.run_name,
                                    job.tags)  # fmt: skip
    if run_id is not None:
        kept.put(digest, KeptResult(held.out_dir, run_id))
    if result.status != "finished":
        return False
    if run_id is None:
        job.end(NOT_LOGGED, None, digest, f"still not logged; its result stays in {held.out_dir}",
                result_dir=held.out_dir)  # fmt: skip
    else:
        job.end(FINISHED, run_id, digest, f"logged as run {run_id} from {held.out_dir}, measured by an earlier launch",
                result_dir=held.out_dir)  # fmt: skip
    return True


def _measured_before(job: _Job, digest: str, held: KeptResult | None, online: bool) -> bool:
    """``bench.resume``: skipped when the experiment holds a FINISHED run of this configuration,
    or, while the server does not answer, when this sweep logged one (its kept entry says so)."""
    from mlflow_energy.tracking.kept import store_failures
    from mlflow_energy.tracking.logger import find_finished_run
    from mlflow_energy.tracking.sweep import SKIPPED

    run_id = None
    try:
        found = find_finished_run(job.sweep.tracking_uri, job.sweep.experiment_id, digest) if online else None
        run_id = found.info.run_id if found is not None else None
    except store_failures():
        online = False
    if not online and held is not None and held.run_id is not None:
        result = held.read()
        run_id = held.run_id if result is not None and result.status == "finished" else None
    if run_id is None:
        return False
    job.end(SKIPPED, run_id, digest,
            f"skipped, already measured in run {run_id} (bench.resume=false measures it again)")  # fmt: skip
    return True


def _measure(job: _Job, config: RunConfig, digest: str, kept: KeptResults) -> None:
    from mlflow_energy.bench.gpu_lease import isolated_device
    from mlflow_energy.bench.interrupt import STOP
    from mlflow_energy.bench.isolation import run_isolated
    from mlflow_energy.tracking.kept import KeptResult, wait_for_server
    from mlflow_energy.tracking.sweep import FAILED, FINISHED, NOT_LOGGED, read_outcomes

    if STOP.requested:  # Ctrl-C while the job was being prepared: it does not start, as the jobs after it
        return
    job.progress(f"starting; {_eta(job.sweep, read_outcomes(job.sweep_dir))}")
    kept.put(digest, KeptResult(str(job.out_dir)))  # first: a result that ends while it cannot be logged is found again
    with isolated_device(config.device, job.sweep.parallel_jobs, job.sweep_dir / "gpu_leases"):
        run_isolated(config, job.out_dir)
    wait_for_server(job.sweep.tracking_uri, config.tracking.wait_s)
    code, run_id = _log_and_report(job.out_dir, config.tracking.uri, config.tracking.experiment, job.run_name, job.tags)
    seconds = time.time() - job.started
    if run_id is None:
        job.end(NOT_LOGGED, None, digest,
                f"measured in {seconds:.0f} s but not logged; the result is kept in {job.out_dir}",
                result_dir=str(job.out_dir), seconds=seconds)  # fmt: skip
        return
    kept.put(digest, KeptResult(str(job.out_dir), run_id))
    status = FINISHED if code == 0 else FAILED
    error = None if code == 0 else f"exit code {code}; see {job.out_dir}"
    job.end(status, run_id, digest, f"{status} in {seconds:.0f} s", error, str(job.out_dir), seconds)


def _eta(sweep: SweepState, done: list) -> str:
    from mlflow_energy.tracking.sweep import SKIPPED

    elapsed = time.time() - sweep.started_s
    measured = [o.seconds for o in done if o.status != SKIPPED and o.seconds]
    if sweep.points is None or not measured:
        return f"{elapsed:.0f} s elapsed"
    remaining = max(0, sweep.points - len(done))
    eta = sum(measured) / len(measured) * remaining / max(1, sweep.parallel_jobs)
    return f"{elapsed:.0f} s elapsed, about {eta:.0f} s left"


def _expand_overrides(argv: list[str]) -> list[str]:
    """``--overrides "a=1 -m b=2,3"`` (one string, as `mlflow run` passes a parameter) -> words."""
    import shlex

    if argv[:1] == ["--overrides"]:
        return shlex.split(" ".join(argv[1:2])) + argv[2:]
    return argv


def _run(argv: list[str]) -> None:
    import shlex

    import hydra

    from mlflow_energy.bench.interrupt import STOP
    from mlflow_energy.config import config_dir, register_schema
    from mlflow_energy.tracking.sweep import SweepCallback
    from mlflow_energy.tracking.sweeper import register_sweeper

    register_schema()
    register_sweeper()  # conf/config.yaml's last default
    STOP.install(EXIT_INTERRUPTED)
    overrides = _expand_overrides(argv)
    sys.argv = ["mlflow-energy", *overrides]  # Hydra parses sys.argv itself
    hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")(execute)()
    if SweepCallback.last_end is not None:
        _end_sweep(SweepCallback.last_end, f"mlflow-energy run {shlex.join(overrides)}")
    if SweepCallback.register_error:
        _fail(f"the sweep finished but registration failed: {SweepCallback.register_error}", EXIT_RUN_FAILED)


def _end_sweep(end: SweepEnd, command: str) -> None:
    """The sweep's last sentence and exit code: interrupted (130), results or the parent not in
    MLflow (3), failed points (1); nothing when all went well."""
    from mlflow_energy.tracking.sweep import FAILED, NOT_LOGGED

    kept, parent = end.counts[NOT_LOGGED], end.parent_run_id
    resume = f"run the same command again: {command}"
    if end.parent_status is None:
        waiting = f" and {kept} result(s) wait on disk" if kept else ""
        message = (f"the tracking server at {redact_uri(end.tracking_uri)} does not answer, so the sweep's parent run "
                   f"{parent} stays open{waiting}; once it answers, {resume}")  # fmt: skip
    elif kept:
        message = (f"{kept} result(s) could not be logged and wait on disk (the sweep's parent run {parent} is "
                   f"{end.parent_status}); once the tracking server answers, {resume}")  # fmt: skip
    elif end.interrupted:
        message = (f"the sweep stopped after {sum(end.counts.values())} job(s) and its parent run {parent} is closed "
                   f"({end.parent_status}) with their report; to resume, {resume}")  # fmt: skip
    elif end.counts[FAILED]:
        _fail(f"{end.counts[FAILED]} job(s) of the sweep failed; their runs hold the errors.", EXIT_RUN_FAILED)
    else:
        return
    if end.interrupted:
        _interrupted(message)
    _fail(message, EXIT_TRACKING_ERROR)


def _relog(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="mlflow-energy log", description="Log a saved result folder to MLflow, once.")
    parser.add_argument("output_dir", type=Path, help="a run's output folder holding result.json")
    parser.add_argument("--tracking-uri", help="default: where the run was to be logged")
    parser.add_argument("--experiment", help="default: the experiment the run was to be logged in")
    args = parser.parse_args(argv)
    from mlflow_energy.bench.result import BenchResult, ResultFileError
    from mlflow_energy.tracking.logger import LogRequest

    try:
        tracking = BenchResult.read(args.output_dir).config["tracking"]
    except ResultFileError as exc:
        _fail(str(exc), EXIT_CONFIG_ERROR)
    saved = LogRequest.read(args.output_dir) or LogRequest(tracking["uri"], tracking["experiment"], tracking.get("run_name"), {})
    uri, experiment = args.tracking_uri or saved.tracking_uri, args.experiment or saved.experiment
    # Sweep membership (parent run, sweep id) only means something in the store it was made for.
    same_place = (uri, experiment) == (saved.tracking_uri, saved.experiment)
    code, _ = _log_and_report(args.output_dir, uri, experiment, saved.run_name, saved.tags if same_place else {})
    raise SystemExit(code)


def _report(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mlflow-energy report", description="Rebuild a sweep's report from the MLflow store, without re-running."
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument("--sweep", help="sweep id (tag mlflow_energy.sweep_id); default: the latest sweep")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--out", type=Path, help="also keep the report files in this folder")
    args = parser.parse_args(argv)
    from mlflow_energy.report.sweep_report import rebuild_report
    from mlflow_energy.tracking.logger import TrackingError, check_reachable

    try:
        check_reachable(args.tracking_uri)  # a dead server fails in seconds, not after MLflow's minutes of retries
    except TrackingError as exc:
        _fail(str(exc), EXIT_TRACKING_ERROR)
    if args.out is not None:
        _writable_or_fail(args.out, "--out")
    try:
        rebuild_report(args.tracking_uri, args.experiment, args.sweep, args.out)
    except LookupError as exc:
        _fail(str(exc), EXIT_CONFIG_ERROR)


def _register(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="mlflow-energy register",
        description="Register the most efficient run that meets every constraint in the MLflow Model Registry.",
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment name")
    parser.add_argument("--sweep", help="only runs of this sweep (tag mlflow_energy.sweep_id)")
    parser.add_argument("--name", required=True, help="registered model name")
    parser.add_argument("--metric", default="energy/j_per_token", help="metric to optimise (default energy/j_per_token)")
    parser.add_argument("--direction", choices=["auto", "min", "max"], default="auto",
                        help="auto: max for throughput/ and efficiency/ metrics, else min")  # fmt: skip
    parser.add_argument("--max", action="append", default=[], metavar="METRIC=VALUE", help="upper bound (repeatable)")
    parser.add_argument("--min", action="append", default=[], metavar="METRIC=VALUE", help="lower bound (repeatable)")
    parser.add_argument("--alias", default="efficient", help="alias to point at the champion (default efficient)")
    parser.add_argument("--reference", action="store_true", help="hub models: record hub id and revision, copy no weights")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="move the alias to a better value even when the two 95%% intervals overlap "
                             "(default: only when the challenger is better beyond both)")  # fmt: skip
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    args = parser.parse_args(argv)
    from mlflow_energy.tracking.registry import RegistryError, select_and_register

    try:
        select_and_register(args.tracking_uri, args.experiment, args.sweep, args.name, args.metric, args.direction,
                            args.max, args.min, args.alias, args.reference, args.allow_overlap)  # fmt: skip
    except RegistryError as exc:
        _fail(str(exc), EXIT_CONFIG_ERROR)


COMMANDS = {"run": _run, "log": _relog, "report": _report, "register": _register}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if argv else EXIT_CONFIG_ERROR)
    command = COMMANDS.get(argv[0])
    if command is None:
        _fail(f"unknown command {argv[0]!r}; use one of: {', '.join(COMMANDS)}.", EXIT_CONFIG_ERROR)
    from mlflow_energy.tracking.kept import bound_mlflow_retries

    bound_mlflow_retries()  # every command: MLflow's own retries would wait minutes for a dead server
    try:
        command(argv[1:])
    except KeyboardInterrupt:  # before `run` takes over Ctrl-C, or in the other commands
        _fail("interrupted (Ctrl-C); results on disk are kept.", EXIT_INTERRUPTED)
