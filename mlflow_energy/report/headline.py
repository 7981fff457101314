"""The one-line answer of a run, shared by the console, the run's description and its tags."""

from __future__ import annotations

from mlflow_energy.bench.result import Assessment, BenchResult
from mlflow_energy.config import ServingConfig


def basis_label(a: Assessment) -> str:
    """``measured (gpu:nvml_counter)`` or ``ESTIMATE (cpu:estimate:cpu_load, ram:estimate)``."""
    label = "measured" if a.headline == "measured" else "ESTIMATE"
    return f"{label} ({', '.join(a.headline_sources) or 'no source'})"


def headline(result: BenchResult) -> str | None:
    """``energy per token 0.1234 J, 95% interval 0.1210-0.1258 (one run's windows), measured
    (gpu:nvml_counter)``; None when no energy figure exists."""
    s, a = result.summary, result.assessment
    if s is None or a is None or s.energy_j_per_token is None:
        return None
    interval = (
        f", 95% interval {s.energy_j_per_token_ci95_low:.4g}-{s.energy_j_per_token_ci95_high:.4g} ({a.interval})"
        if s.energy_j_per_token_ci95_low is not None
        else ", no interval"
    )
    # A serving run stopped early may have tokens in its windows but no request that ended there.
    per_request = ""
    if result.serving is not None and s.energy_j_per_request is not None:
        per_request = f"energy per request {s.energy_j_per_request:.4g} J, "
    noisy = ""
    if a.target_reached is False and s.measurement_ci_relative is not None:  # said here, not only in a tag
        noisy = (f"; TOO NOISY for the {result.config.bench.target_ci * 100:g}% asked "
                 f"(+-{s.measurement_ci_relative:.1%})")  # fmt: skip
    return f"{per_request}energy per token {s.energy_j_per_token:.4g} J{interval}, {basis_label(a)}{noisy}"


def load_label(serving: ServingConfig) -> str:
    """``2 requests/s, concurrency 8`` or ``concurrency 8``: a serving run's load, in a title or
    a description."""
    rate = f"{serving.request_rate:g} requests/s, " if serving.request_rate is not None else ""
    return f"{rate}concurrency {serving.concurrency}"


def lengths_label(serving: ServingConfig) -> str:
    """``chat-like lengths up to 128 tokens``: how long a serving run's requests are."""
    lengths = {"chat": "chat-like lengths", "same": "equal lengths"}.get(serving.lengths, "lengths from a file")
    cap = f"{serving.max_tokens} tokens" if serving.max_tokens is not None else "the model's positions"
    return f"{lengths} up to {cap}"


def trust_verdict(a: Assessment | None) -> str:
    """``ok``, or the warnings joined: the value of the run's trust tag."""
    if a is None:
        return "no assessment"
    return "; ".join(a.warnings) if a.warnings else "ok"
