"""A run's energy card: its headline figures with units and intervals, its configuration, its
energy sources and its warnings. The card is the run's MLflow description (Markdown) and a
table (``energy_card.json``, one row per figure) that MLflow's artifact comparison lines up
across runs."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow_energy.bench.result import BenchResult
from mlflow_energy.report.headline import headline, lengths_label, load_label
from mlflow_energy.report.timeline import phase_legend
from mlflow_energy.store.names import metric_key

HEADLINE_NOTE = ("The headline is energy per output token, gross (idle included), counting measured domains "
                 "only (GPU counters, RAPL), or CodeCarbon's estimates where nothing was measured; with a measured "
                 "source, the estimates are added only in `energy/with_estimates_*`.")


@dataclass(frozen=True)
class Figure:
    """One row of the card. ``low``/``high``: its 95% interval, where the run has one."""

    label: str
    metric: str
    value: float
    unit: str
    low: float | None = None
    high: float | None = None


# (label, Summary field, unit, interval fields): the rows a card shows, in order, where measured.
_BATCH_ROWS = [
    ("energy per token (headline)", "energy_j_per_token", "J", "energy_j_per_token_ci95"),
    ("energy per token, net of idle", "energy_net_j_per_token", "J", None),
    ("GPU energy per token, net of idle", "energy_gpu_net_j_per_token", "J", None),
    ("energy per token with CodeCarbon's estimates", "energy_with_estimates_j_per_token", "J", None),
    ("energy per 1,000 requests", "energy_wh_per_1k_requests", "Wh", None),
    ("throughput", "throughput_tokens_per_s", "tokens/s", "throughput_tokens_per_s_ci95"),
    ("time to first token p50", "latency_ttft_s_p50", "s", None),
    ("time per output token p50", "latency_tpot_ms_p50", "ms", None),
    ("request latency p90", "latency_request_s_p90", "s", None),
    ("perplexity (held-out text)", "quality_perplexity", "", None),
    ("emissions per 1,000 tokens", "emissions_g_co2e_per_1k_tokens", "g CO2e", None),
    ("peak GPU memory", "memory_gpu_peak_mb", "MB", None),
    ("peak RAM of the measured process", "memory_ram_peak_mb", "MB", None),
]
_SERVING_ROWS = [
    ("energy per request", "energy_j_per_request", "J", "energy_j_per_request_ci95"),
    ("energy per output token", "energy_j_per_token", "J", "energy_j_per_token_ci95"),
    ("energy per 1,000 requests", "energy_wh_per_1k_requests", "Wh", None),
    ("requests per second", "throughput_requests_per_s", "requests/s", None),
    ("output tokens per second", "throughput_tokens_per_s", "tokens/s", None),
    ("time to first token p90", "latency_ttft_s_p90", "s", None),
    ("inter-token latency p90", "latency_tpot_ms_p90", "ms", None),
    ("request latency p90", "latency_request_s_p90", "s", None),
    ("emissions per 1,000 tokens", "emissions_g_co2e_per_1k_tokens", "g CO2e", None),
]


def figures(result: BenchResult) -> list[Figure]:
    """The card's rows the run measured."""
    s = result.summary
    if s is None:
        return []
    # With nothing measured the headline is the estimate itself: the same figure twice says nothing.
    estimate_headline = result.assessment is None or result.assessment.headline != "measured"
    rows = []
    for label, field, unit, interval in _SERVING_ROWS if result.serving is not None else _BATCH_ROWS:
        value = getattr(s, field)
        if value is not None and not (estimate_headline and field == "energy_with_estimates_j_per_token"):
            low, high = (getattr(s, f"{interval}_low"), getattr(s, f"{interval}_high")) if interval else (None, None)
            rows.append(Figure(label, metric_key(field), value, unit, low, high))
    return rows


def table(result: BenchResult) -> dict[str, list]:
    """The card as ``mlflow.log_table`` columns: one row per figure."""
    rows = figures(result)
    return {
        "figure": [f.label for f in rows],
        "metric": [f.metric for f in rows],
        "value": [f.value for f in rows],
        "unit": [f.unit for f in rows],
        "ci95_low": [f.low for f in rows],
        "ci95_high": [f.high for f in rows],
    }


def description(result: BenchResult) -> str:
    """The run's MLflow description (Markdown)."""
    a = result.assessment
    text = f"**{headline(result) or f'no energy figure ({result.status})'}**\n\n"
    if a is not None and a.warnings:
        text += "**Read before quoting:**\n\n" + "".join(f"- {w}\n" for w in a.warnings) + "\n"
    if result.error:
        text += f"**Failed:** {result.error.splitlines()[0][:500]}\n\n"
    rows = figures(result)
    if rows:
        covers = f"95% interval ({a.interval})" if a is not None else "95% interval"
        text += f"| figure | value | {covers} |\n|---|---|---|\n"
        text += "".join(f"| {f.label} | {_number(f.value)} {f.unit} | {_interval(f)} |\n" for f in rows) + "\n"
        text += HEADLINE_NOTE + "\n\n"
    text += f"**Configuration:** {configuration(result)}\n\n"
    text += _sources(result)
    phases = result.windows()
    if phases:
        text += ("**Timeline:** the System metrics tab plots the sampled timeline against time (GPU power, SM "
                 "clock, temperature and utilisation where a GPU was read; CPU load and the process's memory); "
                 f"`system/benchmark_phase` marks each phase from its start to its end ({phase_legend(phases)}).\n")
    return text


def configuration(result: BenchResult) -> str:
    c = result.config
    m, w = c.model, c.workload
    quantization = f", {m.quantization}" if m.quantization != "none" else ""
    what = f"`{m.name}` ({m.weights} weights, {m.dtype}{quantization}{_pruned(result)}) on {result.device or c.device}"
    if result.serving is not None:
        load = f"{load_label(c.serving)}, {lengths_label(c.serving)}"
        return f"{what}, served by {result.serving.server}: {load}"
    return (f"{what}, backend {c.backend.name}: batch {w.batch_size}, {w.prompt_tokens} prompt + {w.new_tokens} new "
            f"tokens, {w.prompts} prompts")  # fmt: skip


def _sources(result: BenchResult) -> str:
    """Each energy domain's source: measured or an estimate, in the headline or kept out of it."""
    a = result.assessment
    if a is None:
        return ""
    lines = []
    for s in dict.fromkeys([*a.headline_sources, *a.estimated_sources]):
        domain, source = s.split(":", 1)
        kind = "**ESTIMATE**" if source.startswith("estimate") else "measured"
        used = "in the headline" if s in a.headline_sources else "kept out of the headline"
        lines.append(f"- {domain.upper()}: `{source}`, {kind}, {used}\n")
    return "**Energy sources:**\n\n" + "".join(lines) + "\n" if lines else ""


def _number(value: float) -> str:
    return f"{value:.4g}"


def _interval(f: Figure) -> str:
    return f"{_number(f.low)}–{_number(f.high)}" if f.low is not None and f.high is not None else ""


def _pruned(result: BenchResult) -> str:
    """``, pruned magnitude (sparsity reached 50.0%), decoder layers [1, 2] removed``; empty when not pruned."""
    p, method = result.pruning, result.config.model.pruning.method
    if p is None:
        return ""
    parts = [f"pruned {method} (sparsity reached {p.sparsity_reached:.1%})"] if method != "none" else []
    if p.layers_removed:
        parts.append(f"decoder layers {p.layers_removed} removed ({p.decoder_layers} left)")
    return ", " + ", ".join(parts)
