"""One job of a sweep (a replicate of a grid point). A job never stops the sweep: whatever
happens becomes its outcome, and a run or, while the tracking server does not answer, a result
kept on disk. It logs a result an earlier launch kept instead of measuring again, skips a
configuration already measured (``bench.resume``), and after a Ctrl-C the jobs that follow do
not start."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow_energy.bench.interrupt import STOP
from mlflow_energy.bench.result import Status
from mlflow_energy.commands.checks import checked
from mlflow_energy.commands.log import log_and_report
from mlflow_energy.store import names
from mlflow_energy.sweep.state import OUTCOME_FILE, Outcome, PointOutcome, SweepState, read_outcomes

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from mlflow_energy.bench.result import BenchResult
    from mlflow_energy.config import RunConfig
    from mlflow_energy.store.kept import KeptResult, KeptResults


@dataclass
class Job:
    """One job of a sweep as the sweep records it."""

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
        return {names.TAG_SWEEP_ID: self.sweep.sweep_id, names.TAG_MLFLOW_PARENT: self.sweep.parent_run_id}

    def progress(self, message: str) -> None:
        where = f"point {self.num + 1} of {self.sweep.points or '?'} ({self.run_name})"
        self.sweep.progress(self.sweep_dir, f"{where}: {message}")

    def end(self, status: Outcome, run_id: str | None, digest: str | None, message: str, error: str | None = None,
            result_dir: str | None = None, seconds: float = 0.0) -> None:  # fmt: skip
        PointOutcome(self.num, self.name, status, run_id, digest, error, seconds, self.point_hash, self.replicate,
                     result_dir).write(self.out_dir)  # fmt: skip
        self.progress(message)


def sweep_job(
    cfg: DictConfig, out_dir: Path, sweep: SweepState, sweep_dir: Path, num: int, overrides: list[str]
) -> None:
    from mlflow_energy.config import ConfigError, config_hash
    from mlflow_energy.store.kept import KeptResults, wait_for_server

    if STOP.requested:
        return
    job, typed = _job(cfg, out_dir, sweep, sweep_dir, num, overrides)
    try:
        config = checked(cfg)
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


def _job(cfg: DictConfig, out_dir: Path, sweep: SweepState, sweep_dir: Path, num: int,
         overrides: list[str]) -> tuple[Job, RunConfig]:  # fmt: skip
    """The job and its typed config, before validation: a refused job still knows its point and replicate."""
    from mlflow_energy.config import point_hash, to_run_config
    from mlflow_energy.record.run_names import point_name, replicate_run_name

    typed = to_run_config(cfg)
    name = point_name(overrides, sweep.swept_keys)
    run_name = replicate_run_name(name, typed.sweep.replicate, sweep.replicates)
    return Job(sweep, sweep_dir, out_dir, num, name, run_name, point_hash(typed), typed.sweep.replicate), typed


def _refuse(job: Job, overrides: list[str], error: str, online: bool, how: str = "refused",
            extra_tags: dict[str, str] | None = None) -> None:  # fmt: skip
    """A job that ended without a result (refused before measuring, or lost): a FAILED run with
    its error (none while the server does not answer)."""
    from mlflow_energy.record.writer import log_refused
    from mlflow_energy.store.kept import store_failures

    tags = {**job.tags, names.TAG_POINT_HASH: job.point_hash, names.TAG_REPLICATE: str(job.replicate),
            **(extra_tags or {})}  # fmt: skip
    run_id = None
    if online:
        try:
            run_id = log_refused(job.sweep.tracking_uri, job.sweep.experiment_id, job.run_name, overrides, error, tags)
        except store_failures():  # the next launch refuses it again and logs that
            pass
    job.end(Outcome.FAILED, run_id, None, f"{how}: {error}", error)


def record_lost_job(cfg: DictConfig, out_dir: Path, num: int, overrides: list[str], cause: str) -> None:
    """In the launching process, for a job the engine lost (killed, cancelled, preempted, its node
    gone): a FAILED point with its cause, its run logged once. The run is the one the job logged
    itself before it was lost, or else the partial result it left on disk, or else a FAILED run
    holding the cause. Launching the sweep again measures the point again."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from mlflow_energy.store.kept import KeptResults, wait_for_server

    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    sweep = SweepState.read(sweep_dir)
    if sweep is None:
        return
    if (out_dir / OUTCOME_FILE).is_file():  # the job recorded its own end before it was lost (SLURM's SIGTERM)
        _tag_lost(sweep, sweep_dir, out_dir, cause)
        return
    with open_dict(cfg):  # as Hydra sets it where a job runs: the config's ${hydra:...} values resolve
        cfg.hydra.runtime.output_dir = str(out_dir)
    HydraConfig.instance().set_config(cfg)
    job, typed = _job(cfg, out_dir, sweep, sweep_dir, num, overrides)
    job.progress(f"lost: {cause}")
    online = wait_for_server(sweep.tracking_uri, typed.tracking.wait_s)
    kept = KeptResults(Path(sweep.kept_dir))
    digest, held, result = _kept_result(cfg, kept)
    if digest is None or held is None or result is None:  # lost before it measured anything it could save
        if STOP.requested:  # cancelled after a Ctrl-C before it measured: not started, as in a local sweep
            job.progress("not measured: the sweep was stopped")
            return
        _refuse(job, overrides, cause, online, "lost", {names.TAG_JOB_LOST: cause})
        return
    _end_lost_with_result(job, typed.tracking.experiment, digest, held, result, kept, online, cause)


def _kept_result(cfg: DictConfig, kept: KeptResults) -> tuple[str | None, KeptResult | None, BenchResult | None]:
    """The job's config hash, its kept entry and the result it saved on disk, where it has them."""
    from mlflow_energy.config import ConfigError, config_hash

    try:
        digest = config_hash(checked(cfg))
    except ConfigError:
        return None, None, None
    held = kept.get(digest)
    return digest, held, (held.read() if held is not None else None)


def _end_lost_with_result(job: Job, experiment: str, digest: str, held: KeptResult, result: BenchResult,
                          kept: KeptResults, online: bool, cause: str) -> None:  # fmt: skip
    """A lost job's saved result, logged once (unless the job logged it itself), with the cause."""
    from mlflow_energy.bench.isolation import close_unfinished
    from mlflow_energy.store.kept import KeptResult

    run_id = held.run_id
    if run_id is None:  # saved mid-run: nobody was left to close it
        close_unfinished(result, result.error or f"its job was lost during {result.phase} ({cause})",
                         Path(held.out_dir))  # fmt: skip
    if run_id is None and online:
        _, run_id = log_and_report(Path(held.out_dir), job.sweep.tracking_uri, experiment, job.run_name,
                                   {**job.tags, names.TAG_JOB_LOST: cause})  # fmt: skip
        if run_id is not None:
            kept.put(digest, KeptResult(held.out_dir, run_id))
    if run_id is None:
        job.end(Outcome.NOT_LOGGED, None, digest, f"lost ({cause}); its partial result stays in {held.out_dir}",
                cause, held.out_dir)  # fmt: skip
        return
    status = Outcome.FINISHED if result.status == Status.FINISHED else Outcome.FAILED
    job.end(status, run_id, digest, f"lost ({cause}); its result is run {run_id}", cause, held.out_dir)


def _logged_from_disk(job: Job, config: RunConfig, digest: str, kept: KeptResults, online: bool) -> bool:
    """A result an earlier launch measured but could not log is logged now instead of measured
    again (or, while the server does not answer, stays kept): True when that ends the job. An
    unfinished one is logged as what it is (FAILED), and the point is measured again."""
    from mlflow_energy.store.kept import KeptResult

    held = kept.get(digest)
    if held is None or held.run_id is not None:
        return False
    result = held.read()
    if result is None:  # its folder was removed: measure the point again
        return False
    run_id = None
    if online:
        _, run_id = log_and_report(Path(held.out_dir), config.tracking.uri, config.tracking.experiment, job.run_name,
                                   job.tags)  # fmt: skip
    if run_id is not None:
        kept.put(digest, KeptResult(held.out_dir, run_id))
    if result.status != Status.FINISHED:
        return False
    if run_id is None:
        job.end(Outcome.NOT_LOGGED, None, digest, f"still not logged; its result stays in {held.out_dir}",
                result_dir=held.out_dir)  # fmt: skip
    else:
        job.end(Outcome.FINISHED, run_id, digest,
                f"logged as run {run_id} from {held.out_dir}, measured by an earlier launch", result_dir=held.out_dir)
    return True


def _measured_before(job: Job, digest: str, held: KeptResult | None, online: bool) -> bool:
    """``bench.resume``: skipped when the experiment holds a FINISHED run of this configuration,
    or, while the server does not answer, when this sweep logged one (its kept entry says so)."""
    from mlflow_energy.store.kept import store_failures
    from mlflow_energy.store.reads import find_finished_run

    run_id = None
    try:
        found = find_finished_run(job.sweep.tracking_uri, job.sweep.experiment_id, digest) if online else None
        run_id = found.info.run_id if found is not None else None
    except store_failures():
        online = False
    if not online and held is not None and held.run_id is not None:
        result = held.read()
        run_id = held.run_id if result is not None and result.status == Status.FINISHED else None
    if run_id is None:
        return False
    job.end(Outcome.SKIPPED, run_id, digest,
            f"skipped, already measured in run {run_id} (bench.resume=false measures it again)")  # fmt: skip
    return True


def _measure(job: Job, config: RunConfig, digest: str, kept: KeptResults) -> None:
    from mlflow_energy.bench.gpu_lease import isolated_device
    from mlflow_energy.bench.isolation import planned_processes, prepare, run_isolated
    from mlflow_energy.store.kept import KeptResult, wait_for_server

    if STOP.requested:  # Ctrl-C while the job was being prepared: it does not start, as the jobs after it
        return
    job.progress(f"starting; {_eta(job.sweep, read_outcomes(job.sweep_dir))}")
    kept.put(digest, KeptResult(str(job.out_dir)))  # first: a result that ends while it cannot be logged is found again
    with isolated_device(config.device, job.sweep.parallel_jobs, job.sweep_dir / "gpu_leases"):
        run_isolated(config, job.out_dir)
    planned = planned_processes(config.scenario, config.bench.processes)
    if planned > 1 and _next_job_follows(job):  # its fresh processes import while this one logs (a job of
        prepare(planned)  # one process is forked, which costs less than a standby)
    wait_for_server(job.sweep.tracking_uri, config.tracking.wait_s)
    code, run_id = log_and_report(job.out_dir, config.tracking.uri, config.tracking.experiment, job.run_name, job.tags)
    seconds = time.time() - job.started
    if run_id is None:
        job.end(Outcome.NOT_LOGGED, None, digest,
                f"measured in {seconds:.0f} s but not logged; the result is kept in {job.out_dir}",
                result_dir=str(job.out_dir), seconds=seconds)  # fmt: skip
        return
    kept.put(digest, KeptResult(str(job.out_dir), run_id))
    status = Outcome.FINISHED if code == 0 else Outcome.FAILED
    error = None if code == 0 else f"exit code {code}; see {job.out_dir}"
    job.end(status, run_id, digest, f"{status} in {seconds:.0f} s", error, str(job.out_dir), seconds)


def _next_job_follows(job: Job) -> bool:
    """Whether this process runs another job of the sweep next, once this one has logged: Hydra's
    basic launcher, not the last job, not interrupted. (Other launchers' jobs run side by side,
    where imports would disturb another job's windows, or in processes of their own.)"""
    last = job.sweep.points is not None and job.num + 1 >= job.sweep.points
    return job.sweep.one_process and not last and not STOP.requested


def _tag_lost(sweep: SweepState, sweep_dir: Path, out_dir: Path, cause: str) -> None:
    """The FAILED run a lost job logged itself gets the engine's cause beside its own error. A job
    that finished (or skipped its point) before its engine reported it lost stands as it is."""
    from mlflow_energy.record.writer import mark_job_lost
    from mlflow_energy.store.kept import store_failures

    recorded = PointOutcome.read(out_dir)
    if recorded.status in (Outcome.FINISHED, Outcome.SKIPPED) or recorded.run_id is None:
        return
    try:
        mark_job_lost(sweep.tracking_uri, recorded.run_id, cause)
    except store_failures():  # the run keeps its own error; the cause stays in sweep.log
        pass
    sweep.progress(sweep_dir, f"the job in {out_dir} was lost after it recorded its end: {cause}")


def _eta(sweep: SweepState, done: list[PointOutcome]) -> str:
    elapsed = time.time() - sweep.started_s
    measured = [o.seconds for o in done if o.status != Outcome.SKIPPED and o.seconds]
    if sweep.points is None or not measured:
        return f"{elapsed:.0f} s elapsed"
    remaining = max(0, sweep.points - len(done))
    eta = sum(measured) / len(measured) * remaining / max(1, sweep.parallel_jobs)
    return f"{elapsed:.0f} s elapsed, about {eta:.0f} s left"
