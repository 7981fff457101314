"""One configuration measured on different machines, side by side: ``mlflow-energy compare-hardware``.

Runs: the FINISHED measurement runs (sweep parents left out) of one or more experiments, in one
or more tracking stores (each machine's own SQLite file, or a shared server), each measurement
once (a result logged into two of the experiments or stores counts once).

Hardware class: ``tracking.store.hardware_class`` (``gpu:<model>``, or ``cpu:<model>``), the
class the registry compares champions within.

Configuration: a run's params less those that do not say what work is computed (``_not_work``,
from the lists below, the one place that says which params match): the device it ran on, where
results go and how the measurement is taken, and what the run learnt (``names.LEARNT_PARAMS``).
Two runs are the same configuration when every other param is equal; a param one run has and
the other lacks is a difference (a run logged by an older version, without a newer param,
matches nothing: the no-counterpart list names the closest configuration and what differs).

Figures: the runs of one configuration on one class combined by ``report.replicates.combine``:
several runs give their mean and a 95% interval across them ("N replicates"), one run gives its
value and its own interval over its windows ("one run's windows"). Each class is compared with
a baseline class: J/token and tokens/s as ratios (class / baseline) with conservative bounds
from both intervals (low = a.low / b.high, high = a.high / b.low), and "cannot be told apart"
where the two J/token intervals overlap. What each side's headline counts (GPU counters, a
CPU's RAPL, CodeCarbon's estimate: tag ``mlflow_energy.headline``) is shown beside it.
"""

from __future__ import annotations

import csv
import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlflow_energy.bench.stats import Interval
from mlflow_energy.report.console import wide_console
from mlflow_energy.report.replicates import Figures, combine, error_bars, show
from mlflow_energy.store import filters, names
from mlflow_energy.store.reads import all_runs, hardware_class
from mlflow_energy.store.uris import redact_uri

ENERGY, SPEED = names.ENERGY_PER_TOKEN, names.THROUGHPUT

# Which params a configuration leaves out (besides names.LEARNT_PARAMS); every other param a
# run logged defines the work. Where it ran, the device, is what the comparison varies:
DEVICE_PARAMS = (names.PARAM_DEVICE, names.PARAM_RESOLVED_DEVICE, names.param_key("serving", "gpus"))
# Where results go and how the measurement is taken, not what is computed: tracking, the
# registry, sweep planning (replicate numbers included), the measurement protocol (windows,
# warm-up, cool-down, timeouts), the carbon intensity, the perplexity evaluation.
NOT_WORK_PREFIXES = ("tracking.", "register.", "sweep.", "bench.", "carbon.", "quality.")
# The serving scenario's protocol keys (its bench.*): how long and how the steady state is
# measured, and the bounds that only decide goodput.
SERVING_PROTOCOL = tuple(names.param_key("serving", key) for key in (
    "duration_s", "num_requests", "warmup_requests", "ramp_up_s", "window_s", "startup_timeout_s",
    "request_timeout_s", "max_error_share", "slo_ttft_s", "slo_tpot_ms", "slo_request_s"))  # fmt: skip

UNSET = "(unset)"  # a param one configuration has and another lacks
BASELINE = "baseline"
TIED = "cannot be told apart"  # the two J/token 95% intervals overlap
LOWER, HIGHER = "lower J/token", "higher J/token"  # beyond both intervals
UNTESTED = "untested (no interval)"
NO_BASELINE = "baseline did not measure it"
NO_FIGURE = "no J/token"  # one side logged no J/token
NO_COUNTERPART_SENTENCE = "no configuration was measured on two hardware classes"
CSV_FILE, MARKDOWN_FILE, PLOT_FILE = "hardware.csv", "hardware.md", "hardware.png"


def _not_work(key: str) -> bool:
    return (key in DEVICE_PARAMS or key in SERVING_PROTOCOL or key in names.LEARNT_PARAMS
            or key.startswith(NOT_WORK_PREFIXES))  # fmt: skip


def configuration_params(params: dict[str, str]) -> dict[str, str]:
    """The params that say what work a run computed: what two runs must share to compare."""
    return {k: v for k, v in params.items() if not _not_work(k)}


@dataclass(frozen=True)
class Ratio:
    """``value`` = class / baseline; ``low``/``high``: conservative bounds from both 95%
    intervals, None where either side has none."""

    value: float
    low: float | None = None
    high: float | None = None

    def __str__(self) -> str:
        bounds = f" [{self.low:.4g}-{self.high:.4g}]" if self.low is not None and self.high is not None else ""
        return f"{self.value:.4g}x{bounds}"


def ratio(a: float, b: float, a_interval: Interval | None = None, b_interval: Interval | None = None) -> Ratio:
    """a / b, bounded by a.low / b.high and a.high / b.low where both have an interval."""
    if a_interval is None or b_interval is None:
        return Ratio(a / b)
    return Ratio(a / b, a_interval.low / b_interval.high, a_interval.high / b_interval.low)


@dataclass
class Cell:
    """One configuration on one hardware class: its runs combined, and how it compares with the
    baseline class's cell of the same configuration."""

    hardware: str
    run_ids: list[str]
    figures: Figures
    headlines: list[str]  # the runs' mlflow_energy.headline values, each once
    gpu_counts: list[str]
    energy_ratio: Ratio | None = None
    speed_ratio: Ratio | None = None
    verdict: str = ""
    other_domains: bool = False  # its headline counts other energy domains than the baseline's

    @property
    def runs(self) -> int:
        return len(self.run_ids)

    @property
    def covers(self) -> str:
        """What the J/token interval covers: ``N replicates``, ``one run's windows``, or ``no interval``."""
        return self.figures.covers if ENERGY in self.figures.intervals else "no interval"

    def value(self, metric: str) -> float | None:
        return self.figures.metrics.get(metric)

    def shown(self, metric: str) -> str:
        value = self.value(metric)
        return "-" if value is None else show(value, self.figures.intervals.get(metric))

    @property
    def headline(self) -> str:
        return "; ".join(self.headlines) or "not tagged"

    @property
    def domains(self) -> frozenset[str] | None:
        """The energy domains the headline counts (``gpu``, ``cpu``, ``ram``); None when not tagged."""
        return frozenset().union(*map(headline_domains, self.headlines)) if self.headlines else None


def headline_domains(headline: str) -> frozenset[str]:
    """``measured (gpu:nvml_counter)`` -> {gpu}; ``ESTIMATE (cpu:estimate:cpu_load, ram:estimate)`` -> {cpu, ram}."""
    inside = headline.partition("(")[2].rpartition(")")[0]
    return frozenset(part.strip().partition(":")[0] for part in inside.split(",") if ":" in part)


@dataclass
class Configuration:
    """The runs of one configuration, by hardware class (baseline first, then by name)."""

    params: dict[str, str]
    cells: dict[str, Cell]
    label: str = ""
    closest: str = ""  # no counterpart: the closest configuration on another class and what differs

    @property
    def matched(self) -> bool:
        return len(self.cells) > 1


@dataclass
class HardwareReport:
    configurations: list[Configuration]  # those with a counterpart first
    classes: list[str]  # baseline first, then by name
    baseline: str
    keys: list[str]  # the params that tell configurations apart (the labels' keys)
    experiments: list[str]
    runs: int
    files: list[Path] = field(default_factory=list)

    @property
    def matched(self) -> list[Configuration]:
        return [c for c in self.configurations if c.matched]

    @property
    def unmatched(self) -> list[Configuration]:
        return [c for c in self.configurations if not c.matched]


def read_runs(clients: list[Any], experiments: list[str]) -> list[Any]:
    """The FINISHED measurement runs of ``experiments`` in the stores of ``clients``, sweep
    parents left out, each result once (the newest first, as each store lists them); LookupError
    for an experiment no store holds, or when there is no run."""
    found: list[Any] = []
    known: set[str] = set()
    for client in clients:
        present = {e: x for e in experiments if (x := client.get_experiment_by_name(e)) is not None}
        known.update(present)
        if present:
            found += all_runs(client, [x.experiment_id for x in present.values()], filters.FINISHED_MEASUREMENTS)
    missing = [e for e in experiments if e not in known]
    if missing:
        raise LookupError(f"there is no experiment named {missing[0]!r}; check --experiment.")
    runs, seen = [], set()
    for run in found:
        result = run.data.tags.get(names.TAG_RESULT_ID) or run.info.run_id
        if run.data.tags.get(names.TAG_SWEEP_PARENT) != "true" and result not in seen:
            seen.add(result)
            runs.append(run)
    if not runs:
        which = ", ".join(repr(e) for e in experiments)
        holds = f"experiment {which} holds" if len(experiments) == 1 else f"experiments {which} hold"
        raise LookupError(f"{holds} no FINISHED measurement run; check --experiment.")
    return runs


def build(runs: list[Any], baseline: str | None = None, experiments: list[str] | None = None) -> HardwareReport:
    """Groups ``runs`` by configuration and hardware class, picks the baseline class (LookupError
    for a ``baseline`` text that names no class or several) and compares every class with it."""
    groups: dict[tuple[tuple[str, str], ...], dict[str, list[Any]]] = {}
    for run in runs:
        key = tuple(sorted(configuration_params(run.data.params).items()))
        groups.setdefault(key, {}).setdefault(hardware_class(run), []).append(run)
    measured: dict[str, int] = {}
    for by_class in groups.values():
        for hardware in by_class:
            measured[hardware] = measured.get(hardware, 0) + 1
    chosen = choose_baseline(measured, baseline)
    classes = [chosen, *sorted(c for c in measured if c != chosen)]
    configurations = [
        Configuration(dict(key), {c: _cell(c, by_class[c]) for c in classes if c in by_class})
        for key, by_class in groups.items()
    ]
    keys = differing_keys([c.params for c in configurations])
    configurations.sort(key=lambda c: (not c.matched, [_natural(c.params.get(k)) for k in keys]))
    for configuration in configurations:
        configuration.label = label(configuration.params, keys)
        _compare(configuration, chosen)
    for configuration in configurations:
        if not configuration.matched:
            configuration.closest = _closest(configuration, configurations)
    return HardwareReport(configurations, classes, chosen, keys, experiments or [], len(runs))


def choose_baseline(measured: dict[str, int], text: str | None) -> str:
    """The class named by ``text`` (its whole name, else the one class containing it, either
    case-insensitive); without ``text``, the class that measured the most configurations, ties
    by name."""
    if text is None:
        return min(measured, key=lambda c: (-measured[c], c))
    wanted = text.casefold()
    exact = [c for c in measured if c.casefold() == wanted]
    matches = exact or sorted(c for c in measured if wanted in c.casefold())
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(measured))
    if not matches:
        raise LookupError(f"--baseline {text!r} matches no hardware class; pick one of: {known}.")
    raise LookupError(f"--baseline {text!r} matches {len(matches)} hardware classes ({', '.join(matches)}); "
                      "give more of the name.")  # fmt: skip


def _cell(hardware: str, runs: list[Any]) -> Cell:
    figures = combine([run.data.metrics for run in runs])
    headlines = sorted({h for run in runs if (h := run.data.tags.get(names.TAG_HEADLINE))})
    gpus = sorted({g for run in runs if (g := run.data.tags.get(names.TAG_GPU_COUNT)) is not None})
    return Cell(hardware, [run.info.run_id for run in runs], figures, headlines, gpus)


def _compare(configuration: Configuration, baseline: str) -> None:
    reference = configuration.cells.get(baseline)
    for hardware, cell in configuration.cells.items():
        if hardware == baseline:
            cell.verdict = BASELINE
            continue
        if reference is None:
            cell.verdict = NO_BASELINE
            continue
        cell.energy_ratio = _ratio(cell, reference, ENERGY)
        cell.speed_ratio = _ratio(cell, reference, SPEED)
        cell.verdict = _verdict(cell, reference)
        cell.other_domains = None not in (cell.domains, reference.domains) and cell.domains != reference.domains


def _ratio(cell: Cell, reference: Cell, metric: str) -> Ratio | None:
    a, b = cell.value(metric), reference.value(metric)
    if a is None or b is None or b <= 0:
        return None
    return ratio(a, b, cell.figures.intervals.get(metric), reference.figures.intervals.get(metric))


def _verdict(cell: Cell, reference: Cell) -> str:
    a, b = cell.figures.intervals.get(ENERGY), reference.figures.intervals.get(ENERGY)
    if cell.value(ENERGY) is None or reference.value(ENERGY) is None:
        return NO_FIGURE
    if a is None or b is None:
        return UNTESTED
    if a.overlaps(b):
        return TIED
    return LOWER if a.high < b.low else HIGHER


def differing_keys(configurations: list[dict[str, str]]) -> list[str]:
    """The params whose value (or presence) differs between configurations, sorted; with one
    configuration, ``model.name``."""
    every = sorted(set().union(*configurations)) if configurations else []
    keys = [k for k in every if len({c.get(k) for c in configurations}) > 1]
    return keys or [names.PARAM_MODEL_NAME]


def label(params: dict[str, str], keys: list[str]) -> str:
    """``model.name=tiny-stories, workload.batch_size=4``: the params that tell it apart."""
    return ", ".join(f"{k}={params.get(k, UNSET)}" for k in keys)


def _natural(value: str | None) -> tuple[int, float, str]:
    """Numbers in numeric order (4 before 16), then text, then an unset param."""
    if value is None:
        return (2, 0.0, "")
    try:
        number = float(value)
    except ValueError:
        return (1, 0.0, value)
    return (0, number, "") if math.isfinite(number) else (1, 0.0, value)


def _closest(lonely: Configuration, configurations: list[Configuration]) -> str:
    """``closest on gpu:H100: model.dtype float32 here, bfloat16 there``: the configuration
    measured on another class that differs in the fewest params, and how."""
    (hardware,) = lonely.cells
    others = [c for c in configurations if c is not lonely and set(c.cells) - {hardware}]
    if not others:
        return ""

    def differences(other: Configuration) -> list[str]:
        keys = sorted(set(lonely.params) | set(other.params))
        return [k for k in keys if lonely.params.get(k) != other.params.get(k)]

    best = min(others, key=lambda c: len(differences(c)))
    where = ", ".join(c for c in best.cells if c != hardware)
    shown = [f"{k} {lonely.params.get(k, UNSET)} here, {best.params.get(k, UNSET)} there" for k in differences(best)]
    more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
    return f"closest on {where}: {'; '.join(shown[:3])}{more}"


def _where(configuration: Configuration) -> str:
    (cell,) = configuration.cells.values()
    return f"{cell.hardware}, {cell.runs} run(s), J/token {cell.shown(ENERGY)}"


def lonely_line(configuration: Configuration) -> str:
    """One line of the no-counterpart list: where it was measured, and the closest configuration."""
    closest = f" ({configuration.closest})" if configuration.closest else ""
    return f"{configuration.label}: only on {_where(configuration)}{closest}"


INTERVALS_NOTE = (
    "Intervals are 95%: where a hardware class ran a configuration several times, the mean of those runs and "
    'an interval across them ("N replicates": it covers drift between runs); where it ran it once, the run\'s '
    'value and its own interval over its measurement windows ("one run\'s windows": noise inside that run '
    "only, so narrower). A ratio is class / baseline; its bounds are conservative, from both intervals "
    '(low = class low / baseline high, high = class high / baseline low). "cannot be told apart": the two '
    "J/token intervals overlap."
)
HEADLINE_NOTE = (
    "headline: what J/token counts on that machine (tag mlflow_energy.headline): GPU counters, a CPU's RAPL, "
    "or CodeCarbon's ESTIMATE; * marks a ratio between headlines that count different energy domains (a GPU's "
    "energy against a CPU package's), which is what each machine could measure, not the same quantity."
)


Column = tuple[str, Callable[[Configuration, Cell], Any]]


def _bound(ratio_of: Callable[[Cell], Ratio | None], part: str) -> Callable[[Configuration, Cell], Any]:
    def value(_: Configuration, cell: Cell) -> Any:
        r = ratio_of(cell)
        figure = None if r is None else getattr(r, part)
        return "" if figure is None else figure

    return value


def _metric(metric: str, which: int) -> Callable[[Configuration, Cell], Any]:
    """``which``: 0 the value, 1 its interval's low end, 2 its high end."""

    def value(_: Configuration, cell: Cell) -> Any:
        interval = cell.figures.intervals.get(metric)
        if which == 0:
            return cell.figures.metrics.get(metric, "")
        return "" if interval is None else (interval.low if which == 1 else interval.high)

    return value


def csv_columns(keys: list[str]) -> list[Column]:
    energy_low, energy_high = names.interval_keys(ENERGY)
    speed_low, speed_high = names.interval_keys(SPEED)
    columns: list[Column] = [
        ("configuration", lambda c, _: c.label),
        ("hardware", lambda _, cell: cell.hardware),
        ("counterpart", lambda c, _: "yes" if c.matched else "no"),
        ("runs", lambda _, cell: cell.runs),
        ("interval", lambda _, cell: cell.covers),
        (ENERGY, _metric(ENERGY, 0)), (energy_low, _metric(ENERGY, 1)), (energy_high, _metric(ENERGY, 2)),
        (SPEED, _metric(SPEED, 0)), (speed_low, _metric(SPEED, 1)), (speed_high, _metric(SPEED, 2)),
    ]  # fmt: skip
    for metric, ratio_of in ((ENERGY, lambda cell: cell.energy_ratio), (SPEED, lambda cell: cell.speed_ratio)):
        columns += [(f"{metric}_ratio{suffix}", _bound(ratio_of, part))
                    for suffix, part in (("", "value"), ("_low", "low"), ("_high", "high"))]  # fmt: skip
    columns += [
        ("vs_baseline", lambda _, cell: cell.verdict),
        ("headline", lambda _, cell: cell.headline),
        ("headline_domains_differ", lambda _, cell: "yes" if cell.other_domains else ""),
        ("gpu_count", lambda _, cell: " ".join(cell.gpu_counts)),
        *((k, lambda c, _, k=k: c.params.get(k, UNSET)) for k in keys),
        ("run_ids", lambda _, cell: " ".join(cell.run_ids)),
        ("no_counterpart_closest", lambda c, _: c.closest),
    ]
    return columns


def write_csv(report: HardwareReport, path: Path) -> None:
    """One row per configuration x hardware class."""
    columns = csv_columns(report.keys)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([header for header, _ in columns])
        for c in report.configurations:
            for cell in c.cells.values():
                writer.writerow([value(c, cell) for _, value in columns])


def _ratio_text(r: Ratio | None, cell: Cell | None = None) -> str:
    """The ratio and its bounds; `` *`` where ``cell``'s headline counts other domains than the baseline's."""
    return "-" if r is None else f"{r}{' *' if cell is not None and cell.other_domains else ''}"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def write_markdown(report: HardwareReport, path: Path, tracking_uris: list[str]) -> None:
    """A table to paste into docs: each configuration measured on two classes or more, one row
    per class; what the intervals cover; the configurations without counterpart."""
    lines = [
        f"# The same configurations on {len(report.classes)} hardware classes",
        "",
        f"Runs: {report.runs} FINISHED measurement runs of experiment(s) {', '.join(report.experiments)} in "
        f"{', '.join(redact_uri(uri) for uri in tracking_uris)}. Baseline: {report.baseline}. "
        "Configurations match on every param but the "
        f"device, where results go and how they are measured; labelled by {', '.join(report.keys)}.",
        "",
    ]
    if report.matched:
        lines += [
            "| configuration | hardware | runs | interval from | J/token [95%] | tokens/s [95%] | J/token vs baseline "
            "| tokens/s vs baseline | J/token verdict | headline |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in report.matched:
            for i, cell in enumerate(c.cells.values()):
                shown = c.label if i == 0 else ""
                lines.append(
                    f"| {_md(shown)} | {_md(cell.hardware)} | {cell.runs} | {cell.covers} | {cell.shown(ENERGY)} | "
                    f"{cell.shown(SPEED)} | {_ratio_text(cell.energy_ratio, cell)} | "
                    f"{_ratio_text(cell.speed_ratio)} | {cell.verdict} | {_md(cell.headline)} |"
                )  # fmt: skip
        lines += ["", INTERVALS_NOTE, "", HEADLINE_NOTE, ""]
    else:
        lines += [f"{NO_COUNTERPART_SENTENCE[0].upper()}{NO_COUNTERPART_SENTENCE[1:]}.", ""]
    if report.unmatched:
        lines += ["## No counterpart", "", "Measured on one hardware class only:", ""]
        lines += [f"- {_md(lonely_line(c))}" for c in report.unmatched]
        lines.append("")
    path.write_text("\n".join(lines))


def plot(report: HardwareReport, path: Path) -> None:
    """Grouped bars, one per hardware class, of J/token and tokens/s per configuration (log
    scales), with 95% interval bars where known and each J/token's ratio to the baseline above
    its bar; the configurations with a counterpart, or all of them when none has one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    shown = report.matched or report.configurations
    width = min(30.0, max(8.0, 0.5 * len(shown) * (len(report.classes) + 1)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(width, 9), dpi=120, sharex=True)
    bar = 0.8 / len(report.classes)
    for i, hardware in enumerate(report.classes):
        xs = [x + (i - (len(report.classes) - 1) / 2) * bar for x in range(len(shown))]
        cells = [c.cells.get(hardware) for c in shown]
        name = f"{hardware} (baseline)" if hardware == report.baseline else hardware
        for ax, metric in ((top, ENERGY), (bottom, SPEED)):
            values = [_figure(cell, metric) for cell in cells]
            ax.bar(xs, [math.nan if v is None else v for v in values], bar, yerr=_bars(cells, metric),
                   capsize=3, label=name, color=f"C{i}", error_kw={"elinewidth": 0.8, "ecolor": "black"})  # fmt: skip
        for x, cell in zip(xs, cells, strict=True):
            if cell is not None and cell.energy_ratio is not None:
                interval = cell.figures.intervals.get(ENERGY)
                top_of_bar = interval.high if interval is not None else cell.figures.metrics[ENERGY]
                top.annotate(f"{cell.energy_ratio.value:.3g}x", (x, top_of_bar), fontsize=7, xytext=(0, 2),
                             textcoords="offset points", ha="center", va="bottom")  # fmt: skip
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    for ax, label_text in ((top, "energy per token, J (lower is better)"), (bottom, "tokens/s (higher is better)")):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_ylabel(label_text)
        ax.grid(axis="y", alpha=0.3, which="both")
    top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # clear of the bars and their ratios
    keys = differing_keys([c.params for c in shown])  # what tells the plotted configurations apart
    ticks = [", ".join(c.params.get(k, UNSET) for k in keys) for c in shown]
    bottom.set_xticks(range(len(shown)))
    slanted = len(shown) > 4 or max(map(len, ticks)) > 20
    bottom.set_xticklabels(ticks, rotation=30 if slanted else 0, ha="right" if slanted else "center", fontsize=8)
    bottom.set_xlabel(textwrap.fill(", ".join(keys), width=int(width * 12)))
    missing = "" if report.matched else f"; {NO_COUNTERPART_SENTENCE}"
    fig.suptitle(f"The same configurations by hardware class (baseline {report.baseline}){missing}\n"
                 "error bars: 95% intervals where known (N replicates, or one run's windows)\n"
                 "above a J/token bar: its ratio to the baseline's", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _bars(cells: list[Cell | None], metric: str) -> list[list[float]]:
    return error_bars([(_figure(c, metric), c.figures.intervals.get(metric) if c else None) for c in cells])


def _figure(cell: Cell | None, metric: str) -> float | None:
    return None if cell is None else cell.value(metric)


def print_table(report: HardwareReport, console: Console | None = None) -> None:
    """The configurations with a counterpart, one row per class, then the ones without."""
    console = console or wide_console()
    if report.matched:
        table = Table(title=f"The same configurations by hardware class (baseline {report.baseline})",
                      caption=escape("Ratios: class / baseline [conservative bounds from both 95% intervals]; "
                                     "* the two headlines count different energy domains."))  # fmt: skip
        for header in ("configuration", "hardware", "runs (interval)", "J/token [95%]", "tokens/s [95%]",
                       "J/token vs baseline", "tokens/s vs baseline", "verdict", "headline"):  # fmt: skip
            table.add_column(header, overflow="fold")
        for c in report.matched:
            for i, cell in enumerate(c.cells.values()):
                cells = [c.label if i == 0 else "", cell.hardware, f"{cell.runs} ({cell.covers})", cell.shown(ENERGY),
                         cell.shown(SPEED), _ratio_text(cell.energy_ratio, cell), _ratio_text(cell.speed_ratio),
                         cell.verdict, cell.headline]  # fmt: skip
                table.add_row(*map(escape, cells), end_section=i == len(c.cells) - 1)
        console.print(table)
        console.print(INTERVALS_NOTE, soft_wrap=True, markup=False)
    else:
        console.print(f"{NO_COUNTERPART_SENTENCE[0].upper()}{NO_COUNTERPART_SENTENCE[1:]}; the files list the "
                      f"configurations each class measured.", soft_wrap=True)  # fmt: skip
    if report.unmatched:
        console.print(f"{len(report.unmatched)} configuration(s) with no counterpart on another hardware class:",
                      soft_wrap=True)  # fmt: skip
        for c in report.unmatched:
            console.print(f"  {lonely_line(c)}", soft_wrap=True, markup=False, highlight=False)


def load(tracking_uris: list[str], experiments: list[str], baseline: str | None = None) -> HardwareReport:
    """The report of ``experiments``' runs in the stores at ``tracking_uris``; LookupError (one
    sentence) for an unknown experiment, an experiment without measurement runs, or a
    ``baseline`` that names no class or several."""
    from mlflow.tracking import MlflowClient

    experiments = list(dict.fromkeys(experiments))
    clients = [MlflowClient(tracking_uri=uri) for uri in dict.fromkeys(tracking_uris)]
    return build(read_runs(clients, experiments), baseline, experiments)


def write(report: HardwareReport, folder: Path, tracking_uris: list[str], console: Console | None = None) -> list[Path]:
    """hardware.csv, hardware.md and hardware.png in ``folder``; the table and the files' paths
    on the console."""
    folder.mkdir(parents=True, exist_ok=True)
    report.files = [folder / CSV_FILE, folder / MARKDOWN_FILE, folder / PLOT_FILE]
    write_csv(report, report.files[0])
    write_markdown(report, report.files[1], tracking_uris)
    plot(report, report.files[2])
    console = console or wide_console()
    print_table(report, console)
    console.print(f"Baseline: {report.baseline}; {len(report.matched)} of {len(report.configurations)} "
                  f"configuration(s) measured on two hardware classes or more, from {report.runs} run(s).",
                  soft_wrap=True, markup=False)  # fmt: skip
    for path in report.files:
        console.print(f"Wrote {path}", soft_wrap=True, markup=False, highlight=False)
    return report.files
