"""MLflow Tracing, beyond and around its public API (tested with mlflow 3.4, 3.17 and 3.18):

- span processors (``mlflow.tracing.configure(span_processors=...)``, public) run as a span ends;
  this module adds and removes one without dropping the user's own;
- the spans still open, with their start times (``InMemoryTraceManager``'s traces, private):
  what a span shares the GPU with while it runs. Where this MLflow keeps them elsewhere, no span
  counts as open, and a warning says once that overlapping calls may be over-counted;
- tags on a trace still being recorded (the trace manager's ``TraceInfo.tags``, private), so
  they are exported with it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Container
from typing import Any

log = logging.getLogger("mlflow_energy.adapters")

CHAT_USAGE = "mlflow.chat.tokenUsage"  # mlflow.tracing.constant.SpanAttributeKey.CHAT_USAGE
_warned: set[str] = set()
_lock = threading.Lock()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def output_tokens(span: Any) -> int | None:
    """The output tokens of a model call's span: MLflow's token usage attribute (chat completions,
    responses, most autologgers), else the ``usage`` of the OpenAI-style response it recorded as
    its outputs (MLflow's openai autolog records no usage for the completions API); None where
    the span has neither."""
    usage = span.get_attribute(CHAT_USAGE)
    if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
        return usage["output_tokens"]
    outputs = span.outputs  # as MLflow serialised it: a dict for a pydantic response
    usage = outputs.get("usage") if isinstance(outputs, dict) else None
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        return usage["completion_tokens"]
    return None


def add_span_processor(processor: Callable[[Any], None]) -> None:
    from mlflow.tracing.config import get_config

    with _lock:
        import mlflow

        mlflow.tracing.configure(span_processors=[*get_config().span_processors, processor])


def remove_span_processor(processor: Callable[[Any], None]) -> None:
    from mlflow.tracing.config import get_config

    with _lock:
        import mlflow

        mlflow.tracing.configure(span_processors=[p for p in get_config().span_processors if p is not processor])


def _open_traces(ended_traces: Container[str]) -> list[Any] | None:
    """The traces MLflow keeps in this process (``_Trace``: ``info``, ``span_dict``) but those
    known to have ended, which wait there until exported and are skipped by id, unread (a backlog
    of them made each span's end cost milliseconds); None where this MLflow keeps them elsewhere."""
    try:
        from mlflow.tracing.trace_manager import InMemoryTraceManager

        traces = InMemoryTraceManager.get_instance()._traces
        return [t for t in (traces.get(i) for i in list(traces) if i not in ended_traces) if t is not None]
    except Exception:
        return None


def open_span_starts(span_types: tuple[str, ...], exclude_span_id: str, ended_traces: Container[str]) -> list[int]:
    """Start times (ns) of the spans of these types still open in this process, but one;
    ``ended_traces``: ids of traces known to have ended."""
    traces = _open_traces(ended_traces)
    if traces is None:
        _warn_once("open", "this MLflow keeps its open spans elsewhere: overlapping LLM spans each get the "
                           "energy of the whole overlap")  # fmt: skip
        return []
    open_spans = (s for t in traces for s in list(t.span_dict.values()) if s.end_time_ns is None)
    return [s.start_time_ns for s in open_spans if s.span_type in span_types and s.span_id != exclude_span_id]


def set_trace_tags(trace_id: str, tags: dict[str, str]) -> None:
    """Tags on the trace being recorded (it is exported with them)."""
    try:
        from mlflow.tracing.trace_manager import InMemoryTraceManager

        with InMemoryTraceManager.get_instance().get_trace(trace_id) as trace:
            if trace is not None:
                trace.info.tags.update(tags)
                return
    except Exception:
        pass
    _warn_once("tags", "this MLflow keeps its traces elsewhere: the energy totals stay on the root span only")
