"""Choose the most efficient run that is still good enough and register its model.

Selection: FINISHED measurement runs of an experiment (optionally one sweep), the replicates
of one configuration (runs sharing a point hash) taken together as their mean with a 95%
interval across them; those that meet every constraint; the best by one metric; ties broken
on the J/token-tokens/s Pareto front, then by speed. Registration: the run's exact model
(weights, dtype, quantization) as a text generating pyfunc, or in reference mode its hub id
and revision; the version carries the energy evidence and the selected metric's interval as
tags and an energy card as description. The alias moves only to a version measured on the
same hardware class, chosen by the same metric, and better beyond both 95% intervals (or, with
``allow_overlap``, better in value).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.bench.stats import Interval
from mlflow_energy.config import ModelConfig
from mlflow_energy.record.run_names import point_of_run_name
from mlflow_energy.record.writer import set_alias
from mlflow_energy.report.pareto import pareto_front
from mlflow_energy.report.replicates import Figures, combine, show
from mlflow_energy.store import filters, names
from mlflow_energy.store.reads import hardware_class

ENERGY, SPEED = names.ENERGY_PER_TOKEN, names.THROUGHPUT
HIGHER_IS_BETTER_SECTIONS = ("throughput/", "efficiency/")
TEXT_GENERATOR = Path(__file__).resolve().parent / "text_generator.py"
# Shipped beside the registered model, which applies them to the saved weights as the run did.
MODEL_CODE = [Path(__file__).resolve().parents[1] / "inference" / name for name in ("quantization.py", "pruning.py")]



class RegistryError(RuntimeError):
    """Selection or registration cannot go on; one sentence, the registry untouched."""


def default_direction(metric: str) -> str:
    return "max" if metric.startswith(HIGHER_IS_BETTER_SECTIONS) else "min"


@dataclass(frozen=True)
class Constraint:
    """``metric`` must be at most (``max``) or at least (``min``) ``bound``."""

    metric: str
    bound: float
    kind: str

    @classmethod
    def parse(cls, text: str, kind: str) -> Constraint:
        metric, _, value = text.rpartition("=")
        try:
            bound = float(value)
        except ValueError:
            bound = None
        if not metric or bound is None:
            raise RegistryError(f"--{kind} {text!r} must read METRIC=NUMBER, e.g. quality/perplexity=12.")
        return cls(metric, bound, kind)

    def violation(self, metrics: dict[str, float]) -> str | None:
        value = metrics.get(self.metric)
        if value is None:
            return f"{self.metric} not logged"
        if self.kind == "max" and value > self.bound:
            return f"{self.metric} {value:.4g} > {self.bound:g}"
        if self.kind == "min" and value < self.bound:
            return f"{self.metric} {value:.4g} < {self.bound:g}"
        return None


@dataclass
class Candidate:
    """One configuration: its replicate runs (the first stands for them) and their figures."""

    runs: list[Any]
    figures: Figures
    kept: bool
    reason: str

    @property
    def run(self) -> Any:
        return self.runs[0]

    @property
    def name(self) -> str:
        name = self.run.info.run_name or self.run.info.run_id
        return f"{point_of_run_name(name)} ({len(self.runs)} replicates)" if len(self.runs) > 1 else name

    def metric(self, key: str) -> float | None:
        return self.figures.metrics.get(key)

    def value(self, key: str) -> float:
        """A metric the candidate logged (a kept candidate logged the selected metric: ``_judge``)."""
        return self.figures.metrics[key]

    def interval(self, key: str) -> Interval | None:
        return self.figures.intervals.get(key)


@dataclass
class Selection:
    candidates: list[Candidate]
    chosen: Candidate
    metric: str
    direction: str

    @property
    def tied(self) -> list[Candidate]:
        """The other qualifying configurations whose 95% interval of the metric overlaps the
        chosen one's: the data cannot tell them apart from it."""
        mine = self.chosen.interval(self.metric)
        if mine is None:
            return []
        return [c for c in self.candidates if c.kept and c is not self.chosen
                and (theirs := c.interval(self.metric)) is not None and theirs.overlaps(mine)]  # fmt: skip

    def decision(self) -> str:
        """What was chosen, and first, when it is so, that the data cannot tell it from others."""
        chosen, tied = f"{self.chosen.name} (run {self.chosen.run.info.run_id})", self.tied
        if not tied:
            return f"Chosen: {chosen}"
        return (f"{len(tied) + 1} qualifying configurations cannot be told apart on {self.metric} (their 95% "
                f"intervals overlap: {', '.join(c.name for c in tied)}); chosen for the {self.direction} "
                f"value: {chosen}")  # fmt: skip


def select(
    client: Any, experiment: str, sweep_id: str | None, metric: str, direction: str, constraints: list[Constraint]
) -> Selection:
    from mlflow_energy.store.reads import search_experiment_runs

    try:
        _, found = search_experiment_runs(client, experiment, filters.FINISHED_MEASUREMENTS, sweep_id)
    except LookupError as exc:
        raise RegistryError(str(exc)) from None
    runs = [r for r in found if r.data.tags.get(names.TAG_SWEEP_PARENT) != "true"]
    if not runs:
        where = f"sweep {sweep_id!r} of experiment {experiment!r}" if sweep_id else f"experiment {experiment!r}"
        raise RegistryError(f"{where} has no FINISHED measurement run; check --experiment and --sweep.")
    logged = set().union(*(r.data.metrics for r in runs))
    for key in [metric, *(c.metric for c in constraints)]:
        if key not in logged:
            raise RegistryError(f"no run logged the metric {key!r}; pick one such as {ENERGY} or {SPEED}.")
    candidates = [_judge(replicates, metric, constraints) for replicates in _configurations(runs)]
    kept = [c for c in candidates if c.kept]
    if not kept:
        reasons = ", ".join(sorted({c.reason for c in candidates}))
        raise RegistryError(
            f"none of the {len(runs)} runs meets the constraints ({reasons}); "
            "relax them or measure more configurations."
        )
    return Selection(candidates, _best(kept, metric, direction), metric, direction)


def _configurations(runs: list[Any]) -> list[list[Any]]:
    """The replicates of each configuration: runs sharing a point hash and a hardware class (a
    run without a point hash stands alone)."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for run in runs:
        key = (run.data.tags.get(names.TAG_POINT_HASH) or run.info.run_id, hardware_class(run))
        groups.setdefault(key, []).append(run)
    return list(groups.values())


def _judge(runs: list[Any], metric: str, constraints: list[Constraint]) -> Candidate:
    """Judged on the replicates' mean, with the selected metric's interval."""
    figures = combine([run.data.metrics for run in runs], interval_metrics=[metric])
    if runs[0].data.params.get(names.PARAM_MODEL_WEIGHTS) == "random":
        return Candidate(runs, figures, False, "random weights: nothing to deploy")
    if metric not in figures.metrics:
        return Candidate(runs, figures, False, f"{metric} not logged")
    violations = [v for c in constraints if (v := c.violation(figures.metrics))]
    return Candidate(runs, figures, not violations, "; ".join(violations) or "meets every constraint")


def _best(kept: list[Candidate], metric: str, direction: str) -> Candidate:
    sign = 1 if direction == "min" else -1
    best_value = min(sign * c.value(metric) for c in kept)
    tied = [c for c in kept if math.isclose(sign * c.value(metric), best_value, rel_tol=1e-9)]
    measured = [c for c in tied if c.metric(ENERGY) is not None and c.metric(SPEED) is not None]
    front = {
        id(measured[i]) for i in pareto_front([c.value(ENERGY) for c in measured], [c.value(SPEED) for c in measured])
    }
    return max(tied, key=lambda c: (id(c) in front, c.metric(SPEED) or 0.0))


@dataclass
class Registration:
    """The registered version, and what happened to the alias (``message``: one sentence)."""

    name: str
    version: str
    alias: str
    message: str


def register(
    tracking_uri: str, selection: Selection, name: str, alias: str, reference: bool = False, allow_overlap: bool = False
) -> Registration:
    """Logs the chosen run's model (in a run of its own, tagged with the source run), registers
    a version with its evidence, then decides the alias."""
    from mlflow.tracking import MlflowClient

    from mlflow_energy.record.writer import log_model_version

    run = selection.chosen.run
    model_config, artifacts = _model_payload(run, reference)
    version = log_model_version(
        tracking_uri, run, name, TEXT_GENERATOR, MODEL_CODE, model_config, artifacts,
        version_tags(selection), energy_card(selection, reference),
    )  # fmt: skip
    client = MlflowClient(tracking_uri=tracking_uri)
    _, message, _ = decide_alias(client, name, alias, version, selection, allow_overlap)
    return Registration(name, version, alias, message)


def _model_payload(run: Any, reference: bool) -> tuple[dict[str, Any], dict[str, str]]:
    from mlflow_energy.inference.models import resolve_model

    params = run.data.params
    model = ModelConfig(name=params[names.PARAM_MODEL_NAME], weights="pretrained",
                        revision=_none(params.get(names.PARAM_MODEL_REVISION)))
    source = resolve_model(model)
    config = {
        "dtype": params.get(names.PARAM_MODEL_DTYPE, "float32"),
        "quantization": params.get(names.PARAM_MODEL_QUANTIZATION, "none"),
        "pruning": {
            "method": params.get(names.PARAM_PRUNING_METHOD, "none"),
            "sparsity": float(params.get(names.PARAM_PRUNING_SPARSITY, 0.5)),
            "drop_layers": json.loads(params.get(names.PARAM_PRUNING_DROP_LAYERS, "0")),
        },
        "attn_implementation": params.get(names.PARAM_MODEL_ATTN, "sdpa"),
        "max_new_tokens": int(params.get(names.PARAM_NEW_TOKENS, 32)),
    }
    if reference:
        if source.kind != "hub":
            raise RegistryError(f"--reference records a hub id, but {model.name!r} is a local model; drop --reference.")
        return {**config, "hub_id": model.name, "revision": model.revision}, {}
    if source.kind == "hub":
        from huggingface_hub import snapshot_download

        location = snapshot_download(model.name, revision=model.revision, local_files_only=True)
        return config, {"model": location}
    return config, {"model": source.location}


def _none(value: str | None) -> str | None:
    return None if value in (None, "None") else value


def version_tags(selection: Selection) -> dict[str, str]:
    """The chosen configuration's figures (the mean of its replicates) and the selected metric's
    95% interval, which the next challenger must clear."""
    chosen, run = selection.chosen, selection.chosen.run
    metrics = chosen.figures.metrics
    tags = {tag: f"{metrics[key]:.6g}" for tag, key in names.VERSION_EVIDENCE.items() if key in metrics}
    tags[names.VERSION_HARDWARE] = hardware_class(run)
    tags[names.VERSION_SOURCE_RUN] = run.info.run_id
    tags[names.VERSION_SOURCE_RUNS] = " ".join(r.info.run_id for r in chosen.runs)
    tags[names.VERSION_SELECTED_BY] = f"{selection.direction} {selection.metric}"
    tags[names.VERSION_SELECTED_VALUE] = f"{metrics[selection.metric]:.6g}"
    interval = chosen.interval(selection.metric)
    if interval is not None:
        tags |= {names.VERSION_SELECTED_LOW: f"{interval.low:.6g}", names.VERSION_SELECTED_HIGH: f"{interval.high:.6g}",
                 names.VERSION_SELECTED_COVERS: chosen.figures.covers}  # fmt: skip
    for param in names.VERSION_PARAMS:
        if param in run.data.params:
            tags[param] = run.data.params[param]
    return tags


@dataclass(frozen=True)
class Contender:
    """One side of the champion/challenger comparison: a version's value and 95% interval."""

    version: str
    value: float
    interval: Interval | None

    def __str__(self) -> str:
        return f"{show(self.value, self.interval)} (version {self.version})"


def challenger_wins(
    metric: str, direction: str, challenger: Contender, champion: Contender, allow_overlap: bool
) -> tuple[bool, str]:
    """(whether the alias moves, a sentence with both figures and the rule applied). Default rule:
    the challenger's whole interval is better than the champion's whole interval; by value with
    ``allow_overlap``, or where either version has no interval."""
    lower = direction == "min"
    wins = challenger.value < champion.value if lower else challenger.value > champion.value
    new, old = challenger.interval, champion.interval
    if new is None or old is None:
        missing = [f"version {c.version}" for c in (champion, challenger) if c.interval is None]
        rule = f"by value, as {' and '.join(missing)} {'has' if len(missing) == 1 else 'have'} no 95% interval"
    elif allow_overlap:
        rule = "by value (allow-overlap: the 95% intervals may overlap)"
    else:
        wins = new.high < old.low if lower else new.low > old.high
        rule = "beyond both 95% intervals (allow-overlap would compare the values)"
    return wins, f"{metric} {challenger} is {'' if wins else 'not '}better than {champion} {rule}"


def champion_contender(champion: Any) -> Contender:
    """The champion version as its tags record it; versions registered before intervals have none."""
    tags = champion.tags
    value = float(tags[names.VERSION_SELECTED_VALUE])
    bounds = (tags.get(names.VERSION_SELECTED_LOW), tags.get(names.VERSION_SELECTED_HIGH))
    interval = Interval(value, float(bounds[0]), float(bounds[1]), 0) if None not in bounds else None
    return Contender(str(champion.version), value, interval)


def decide_alias(
    client: Any, name: str, alias: str, version: str, selection: Selection, allow_overlap: bool = False
) -> tuple[bool, str, str | None]:
    """Points ``alias`` at ``version`` when it is the first, or beats the champion measured on the
    same hardware class and chosen by the same metric: (moved, message, previous version)."""
    hardware = hardware_class(selection.chosen.run)
    try:
        champion = client.get_model_version_by_alias(name, alias)
    except Exception:  # no such alias yet
        set_alias(client, name, alias, version)
        return True, f"@{alias} now points to version {version} (first champion).", None
    previous = str(champion.version)  # the SQLite registry gives an int
    champion_hardware = champion.tags.get(names.VERSION_HARDWARE)
    if champion_hardware != hardware:
        return False, (f"@{alias} stays on version {previous}: it was measured on {champion_hardware}, "
                       f"version {version} on {hardware}; "
                       "figures from different hardware do not compare."), previous  # fmt: skip
    champion_selected_by = champion.tags.get(names.VERSION_SELECTED_BY)
    if champion_selected_by != f"{selection.direction} {selection.metric}":
        return False, (f"@{alias} stays on version {previous}: it was chosen by {champion_selected_by}, "
                       f"not {selection.direction} {selection.metric}."), previous  # fmt: skip
    metric, chosen = selection.metric, selection.chosen
    challenger = Contender(version, chosen.value(metric), chosen.interval(metric))
    wins, why = challenger_wins(metric, selection.direction, challenger, champion_contender(champion), allow_overlap)
    if wins:
        set_alias(client, name, alias, version)
        return True, f"@{alias} moved from version {previous} to {version}: {why}.", previous
    stays = f"@{alias} stays on version {previous}: {why} (version {version} is registered for the record)."
    return False, stays, previous


def energy_card(selection: Selection, reference: bool) -> str:
    chosen, run = selection.chosen, selection.chosen.run
    m, p, t = chosen.figures.metrics, run.data.params, run.data.tags
    interval = chosen.interval(selection.metric)
    weights = (
        "Weights are referenced by hub id and revision, not copied."
        if reference
        else "The exact weights are stored with this version."
    )

    def fig(key: str, unit: str) -> str:
        return f"{m[key]:.4g} {unit}" if key in m else "not measured"

    return f"""# Energy card: {p.get(names.PARAM_MODEL_NAME)}

Chosen as the {selection.direction} of `{selection.metric}` among {sum(c.kept for c in selection.candidates)} qualifying
configurations (of {len(selection.candidates)}); source run `{run.info.run_id}`. The figures are the mean of
{len(chosen.runs)} run(s) ({', '.join(f'`{r.info.run_id}`' for r in chosen.runs)}); `{selection.metric}`
{show(chosen.value(selection.metric), interval)}{f' (95% interval from {chosen.figures.covers})' if interval else ''}.
{selection.decision()}.

| figure | value |
|---|---|
| energy per token (gross, {t.get(names.TAG_HEADLINE, 'headline domains')}) | {fig(names.ENERGY_PER_TOKEN, 'J')} |
| energy per token with CodeCarbon's estimates | {fig(names.WITH_ESTIMATES_PER_TOKEN, 'J')} |
| energy per token (net of idle) | {fig(names.NET_PER_TOKEN, 'J')} |
| GPU energy per token (net of idle) | {fig(names.GPU_NET_PER_TOKEN, 'J')} |
| throughput | {fig(names.THROUGHPUT, 'tokens/s')} |
| emissions | {fig(names.EMISSIONS_PER_1K_TOKENS, 'g CO2e per 1,000 tokens')} |
| perplexity (held-out text) | {fig(names.PERPLEXITY, '')} |

**Measured on** {hardware_class(run)} ({p.get(names.PARAM_RESOLVED_DEVICE)}), dtype {p.get(names.PARAM_MODEL_DTYPE)},
quantization {p.get(names.PARAM_MODEL_QUANTIZATION, 'none')}, pruning {p.get(names.PARAM_PRUNING_METHOD, 'none')}
(decoder layers removed: {p.get(names.PARAM_LAYERS_REMOVED, 'none')}), batch {p.get(names.PARAM_BATCH_SIZE)},
{p.get(names.PARAM_PROMPT_TOKENS)} prompt + {p.get(names.PARAM_NEW_TOKENS)} generated tokens per request.

**How**: mlflow-energy {t.get(names.TAG_VERSION_PREFIX + 'mlflow-energy', '?')}; GPU energy from
`{t.get(names.TAG_SOURCE_PREFIX + 'gpu')}`, CPU from `{t.get(names.TAG_SOURCE_PREFIX + 'cpu')}`, RAM from
`{t.get(names.TAG_SOURCE_PREFIX + 'ram')}` (estimates are CodeCarbon models, not readings); identical warm-up,
{fig(names.REPETITIONS, 'windows')} of about {fig(names.WINDOW_S, 's')} each, energy CV
{fig(names.ENERGY_CV, '')}; trust: {t.get(names.TAG_TRUST, 'not assessed')}. {weights}
"""


def print_selection(selection: Selection, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"candidates by {selection.direction} {selection.metric}")
    for header in ("run", "run id", f"{selection.metric} [95%]", "interval from", "J/token", "tokens/s", "perplexity",
                   "kept", "why"):  # fmt: skip
        table.add_column(header)
    order = sorted(selection.candidates, key=lambda c: (not c.kept, c.metric(selection.metric) or math.inf))
    for c in order:
        chosen = c is selection.chosen

        def fmt(key: str, c: Candidate = c) -> str:
            value = c.metric(key)
            return "-" if value is None else f"{value:.4g}"

        selected = c.metric(selection.metric)
        table.add_row(("* " if chosen else "") + c.name, c.run.info.run_id[:8],
                      "-" if selected is None else show(selected, c.interval(selection.metric)),
                      c.figures.covers or "-", fmt(ENERGY), fmt(SPEED), fmt(names.PERPLEXITY),
                      "yes" if c.kept else "no", "chosen" if chosen else c.reason)  # fmt: skip
    console.print(table)
    console.print(selection.decision(), soft_wrap=True, highlight=False)


def select_and_register(
    tracking_uri: str, experiment: str, sweep: str | None, name: str, metric: str, direction: str,
    maxima: list[str], minima: list[str], alias: str, reference: bool, allow_overlap: bool = False,
) -> None:  # fmt: skip
    """Select, print the candidates, register, say what happened to the alias. RegistryError
    for every user-facing failure, before the registry is touched."""
    from mlflow.tracking import MlflowClient

    from mlflow_energy.report.console import wide_console
    from mlflow_energy.store.reads import TrackingError, check_reachable

    try:
        check_reachable(tracking_uri)
    except TrackingError as exc:
        raise RegistryError(str(exc)) from None
    constraints = [Constraint.parse(c, "max") for c in maxima] + [Constraint.parse(c, "min") for c in minima]
    direction = default_direction(metric) if direction == "auto" else direction
    selection = select(MlflowClient(tracking_uri=tracking_uri), experiment, sweep, metric, direction, constraints)
    console = wide_console()
    print_selection(selection, console)
    outcome = register(tracking_uri, selection, name, alias, reference, allow_overlap)
    # soft_wrap: each sentence stays one line, whatever the console width (scripts and tests read them)
    console.print(f"Registered {outcome.name} version {outcome.version}. {outcome.message}", soft_wrap=True)
    console.print(f'Load it: mlflow.pyfunc.load_model("models:/{outcome.name}@{outcome.alias}")', soft_wrap=True)
