"""The summary table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mlflow_energy.bench.result import Assessment, BenchResult, Status, Summary
from mlflow_energy.bench.stages import stages_line
from mlflow_energy.report.headline import basis_label, headline, lengths_label


def wide_console() -> Console:
    """Rich falls back to 80 columns when output is not a terminal (logs, CI); tables need more."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _fmt(value: float | None, unit: str, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g} {unit}"


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f" ({low:.4g}-{high:.4g})"


def _net(s: Summary, field: str, unit: str, dropped: list[str]) -> str:
    return "below the noise floor" if field in dropped else _fmt(getattr(s, field), unit)


def print_summary(result: BenchResult, where: str, ui_command: str | None, console: Console | None = None) -> None:
    console = console or wide_console()
    s, a = result.summary, result.assessment or Assessment()
    title = _title(result)
    line = headline(result)
    if line is not None and s is not None:
        console.print(f"[bold]{title}[/bold]", soft_wrap=True)
        console.print(f"[bold]Headline: {line}[/bold]", soft_wrap=True)
        for warning in a.warnings:
            console.print(f"[yellow]Read before quoting:[/yellow] {warning}", soft_wrap=True)
        console.print(_table(s, a, result), soft_wrap=True)
    if result.problems:
        console.print(f"[yellow]Rejected readings:[/yellow] {'; '.join(result.problems)}", soft_wrap=True)
    if result.status != Status.FINISHED:
        console.print(f"[red]Run failed:[/red] {result.error}", soft_wrap=True)
    if result.stages_s:
        console.print(stages_line(result.stages_s), soft_wrap=True)
    console.print(f"Stored in {where}", soft_wrap=True)
    if ui_command:
        console.print(f"See it in the MLflow UI: [bold]{ui_command}[/bold]", soft_wrap=True)


def _title(result: BenchResult) -> str:
    model, workload, serving = result.config.model, result.config.workload, result.config.serving
    what = f"{model.name} ({model.weights} weights, {model.dtype})"
    if result.serving is None:
        return (f"{what} on {result.device}: batch {workload.batch_size}, {workload.prompt_tokens} prompt + "
                f"{workload.new_tokens} new tokens")  # fmt: skip
    load = (f"Poisson arrivals at {serving.request_rate:g} requests/s, at most {serving.concurrency} in flight"
            if serving.request_rate is not None else f"{serving.concurrency} concurrent users")  # fmt: skip
    return (f"{what} served by {result.serving.server} on {result.device}: {load}, {serving.output_length} output, "
            f"{lengths_label(serving)}")  # fmt: skip


def _percentiles(values: list[float | None], unit: str) -> str:
    return " / ".join(_fmt(v, unit) for v in values)


def _serving_rows(table: Table, s: Summary) -> None:
    table.add_row("requests counted (errors)", f"{s.measurement_requests or 0} ({s.measurement_errors or 0})", "")
    table.add_row("requests/s (goodput within serving.slo_*)",
                  f"{_fmt(s.throughput_requests_per_s, '/s')} ({_fmt(s.throughput_goodput_requests_per_s, '/s')})", "")
    table.add_row("time to first token p50 / p90 / p99",
                  _percentiles([s.latency_ttft_s_p50, s.latency_ttft_s_p90, s.latency_ttft_s_p99], "s"), "")
    table.add_row("inter-token latency p50 / p90 / p99",
                  _percentiles([s.latency_tpot_ms_p50, s.latency_tpot_ms_p90, s.latency_tpot_ms_p99], "ms"), "")
    table.add_row("request latency p50 / p90 / p99",
                  _percentiles([s.latency_request_s_p50, s.latency_request_s_p90, s.latency_request_s_p99], "s"), "")
    table.add_row("ramp-up / drain (not measured)",
                  f"{_fmt(s.measurement_ramp_up_s, 's', 3)} / {_fmt(s.measurement_drain_s, 's', 3)}", "")


def _table(s: Summary, a: Assessment, result: BenchResult) -> Table:
    """Headline rows first (the basis in their label), then each domain, then speed and latency."""
    dropped = a.below_noise_floor
    basis = basis_label(a)
    table = Table(show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("gross", justify="right")
    table.add_column("net of idle", justify="right")
    interval = _interval(s.energy_j_per_token_ci95_low, s.energy_j_per_token_ci95_high)
    table.add_row(f"energy per token, {basis}", _fmt(s.energy_j_per_token, "J") + interval,
                  _net(s, "energy_net_j_per_token", "J", dropped))  # fmt: skip
    if result.serving is not None:
        table.add_row("energy per request", _fmt(s.energy_j_per_request, "J"), "")
        table.add_row("energy per token, prompt tokens included", _fmt(s.energy_j_per_processed_token, "J"), "")
    table.add_row("energy per 1,000 requests", _fmt(s.energy_wh_per_1k_requests, "Wh"), "")
    table.add_row("energy of the measured windows", _fmt(s.energy_total_j, "J"), _net(s, "energy_net_j", "J", dropped))
    sources = dict(source.split(":", 1) for source in [*a.headline_sources, *a.estimated_sources])
    for domain, figure in (("GPU", s.energy_gpu_j), ("CPU", s.energy_cpu_j), ("RAM", s.energy_ram_j)):
        source = sources.get(domain.lower())
        if source is None:
            continue
        kept_out = "" if f"{domain.lower()}:{source}" in a.headline_sources else ", not in the headline"
        net = _net(s, "energy_gpu_net_j", "J", dropped) if domain == "GPU" else ""
        table.add_row(f"  {domain} ({source}{kept_out})", _fmt(figure, "J"), net)
    if s.energy_with_estimates_j_per_token is not None and a.headline == "measured":
        table.add_row("energy per token with CodeCarbon's estimates",
                      _fmt(s.energy_with_estimates_j_per_token, "J"), "")  # fmt: skip
    table.add_row("emissions (energy with estimates)", _fmt(s.emissions_g_co2e, "g CO2e"), "")
    table.add_row("throughput", _fmt(s.throughput_tokens_per_s, "tokens/s")
                  + _interval(s.throughput_tokens_per_s_ci95_low, s.throughput_tokens_per_s_ci95_high), "")  # fmt: skip
    if result.serving is not None:
        _serving_rows(table, s)
        return _window_rows(table, s)
    table.add_row("time to first token p50", _fmt(s.latency_ttft_s_p50, "s"), "")
    tpot = "below the noise floor" if "latency_tpot_ms_p50" in dropped else _fmt(s.latency_tpot_ms_p50, "ms")
    table.add_row("time per output token p50", tpot, "")
    table.add_row("request latency p50 / p90",
                  f"{_fmt(s.latency_request_s_p50, 's')} / {_fmt(s.latency_request_s_p90, 's')}", "")  # fmt: skip
    return _window_rows(table, s)


def _window_rows(table: Table, s: Summary) -> Table:
    width = "-" if s.measurement_ci_relative is None else f"{s.measurement_ci_relative:.1%}"
    target = "-" if s.measurement_target_ci is None else f"{s.measurement_target_ci * 100:g}%"
    table.add_row("windows (interval half-width, target)", f"{s.measurement_repetitions} ({width}, {target})", "")
    if s.measurement_gpu_temperature_c is not None:
        table.add_row("GPU temperature at the first window", _fmt(s.measurement_gpu_temperature_c, "C", 3), "")
    return table
