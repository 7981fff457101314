"""The summary table printed at the end of a run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mlflow_energy.bench.result import BenchResult


def wide_console() -> Console:
    """Rich falls back to 80 columns when output is not a terminal (logs, CI); tables need more."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _fmt(value: float | None, unit: str, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g} {unit}"


def print_summary(result: BenchResult, where: str, ui_command: str | None, console: Console | None = None) -> None:
    console = console or wide_console()
    s = result.summary
    model, workload = result.config["model"], result.config["workload"]
    title = (
        f"{model['name']} ({model['weights']} weights, {model['dtype']}) on {result.device}: "
        f"batch {workload['batch_size']}, {workload['prompt_tokens']} prompt + {workload['new_tokens']} new tokens"
    )
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("gross", justify="right")
    table.add_column("net of idle", justify="right")
    if s is not None and s.throughput_tokens_per_s is not None:  # something was measured
        sources = result.environment.get("energy_sources", {})
        table.add_row("energy, measured windows", _fmt(s.energy_total_j, "J"), _fmt(s.energy_net_j, "J"))
        table.add_row("  GPU", _fmt(s.energy_gpu_j, "J"), _fmt(s.energy_gpu_net_j, "J"))
        table.add_row(f"  CPU ({sources.get('cpu', '-')})", _fmt(s.energy_cpu_j, "J"), "")
        table.add_row(f"  RAM ({sources.get('ram', '-')})", _fmt(s.energy_ram_j, "J"), "")
        ci = (
            f" (95% CI {s.energy_j_per_token_ci95_low:.4g}-{s.energy_j_per_token_ci95_high:.4g})"
            if s.energy_j_per_token_ci95_low is not None
            else ""
        )
        table.add_row("energy per token", _fmt(s.energy_j_per_token, "J") + ci, _fmt(s.energy_net_j_per_token, "J"))
        table.add_row("energy per 1,000 requests", _fmt(s.energy_wh_per_1k_requests, "Wh"), "")
        table.add_row("emissions", _fmt(s.emissions_g_co2e, "g CO2e"), "")
        table.add_row("throughput", _fmt(s.throughput_tokens_per_s, "tokens/s"), "")
        table.add_row("time to first token p50", _fmt(s.latency_ttft_s_p50, "s"), "")
        table.add_row("time per output token p50", _fmt(s.latency_tpot_ms_p50, "ms"), "")
        table.add_row("request latency p50 / p90",
                      f"{_fmt(s.latency_request_s_p50, 's')} / {_fmt(s.latency_request_s_p90, 's')}", "")
        cv = None if s.measurement_energy_cv is None else s.measurement_energy_cv * 100
        table.add_row("repetitions (energy CV)", f"{s.measurement_repetitions} ({_fmt(cv, '%', 2)})", "")
        console.print(table)
    if result.problems:
        console.print(f"[yellow]Rejected readings:[/yellow] {'; '.join(result.problems)}")
    if result.status != "finished":
        console.print(f"[red]Run failed:[/red] {result.error}")
    console.print(f"Stored in {where}")
    if ui_command:
        console.print(f"See it in the MLflow UI: [bold]{ui_command}[/bold]")
