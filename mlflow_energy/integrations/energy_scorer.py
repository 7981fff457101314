"""The ``energy`` scorer for ``mlflow.genai.evaluate``: per row, the GPU joules of the request and
per output token, read from the energy its trace's LLM spans carry (``mlflow_energy.autolog()``
or ``trace_energy()`` must be on while the rows are predicted):

    mlflow_energy.autolog()
    mlflow.genai.evaluate(data, predict_fn, scorers=[Correctness(), mlflow_energy.energy])

Each row gets two feedbacks, named as MLflow names a scorer's parts (``<part>/<scorer>``):
``j_per_request/energy`` and ``j_per_output_token/energy``, with the source and the span count
in the rationale. The evaluation run gets their mean, median (p50) and p90. A row whose LLM
spans are not all measured (too short, no counter) gets no value, and the rationale says why:
a part of a request is never counted as zero.
"""

from __future__ import annotations

from typing import Any

from mlflow.entities import AssessmentError, Feedback
from mlflow.genai.scorers import scorer

from mlflow_energy.integrations.span_energy import LLM_SPAN_TYPES
from mlflow_energy.store import names

SCORER_NAME = "energy"
PER_REQUEST = f"j_per_request/{SCORER_NAME}"
PER_OUTPUT_TOKEN = f"j_per_output_token/{SCORER_NAME}"
NOT_MEASURED = "ENERGY_NOT_MEASURED"  # the error code of a row without a figure


def request_energy(trace: Any) -> list[Feedback]:
    """The two feedbacks of one row's trace."""
    spans = [s for s in trace.data.spans if s.span_type in LLM_SPAN_TYPES]
    figures = [s.get_attribute(names.SPAN_ENERGY_J) for s in spans]
    sources = sorted({str(s.get_attribute(names.SPAN_ENERGY_SOURCE)) for s in spans})
    if not spans:
        reason = "the trace has no LLM span (is mlflow_energy.autolog() on, and does an autolog or @mlflow.trace " \
                 "make the model call a span of type LLM or CHAT_MODEL?)"  # fmt: skip
        return [_unmeasured(PER_REQUEST, reason), _unmeasured(PER_OUTPUT_TOKEN, reason)]
    missing = [s for s, f in zip(spans, figures, strict=True) if f is None]
    if missing:
        note = missing[0].get_attribute(names.SPAN_ENERGY_NOTE) or "no energy attributes (was autolog() on?)"
        reason = f"{len(missing)} of {len(spans)} LLM span(s) have no energy figure: {note}"
        return [_unmeasured(PER_REQUEST, reason), _unmeasured(PER_OUTPUT_TOKEN, reason)]
    joules = float(sum(figures))
    tokens = [s.get_attribute(names.SPAN_OUTPUT_TOKENS) for s in spans]
    where = f"{', '.join(sources)}, measured, over {len(spans)} LLM span(s)"
    per_request = Feedback(name=PER_REQUEST, value=joules, rationale=f"{joules:.4g} J of GPU energy ({where})")
    if any(t is None for t in tokens) or not sum(tokens):
        return [per_request, _unmeasured(PER_OUTPUT_TOKEN, "the LLM spans do not all carry output token counts")]
    per_token = joules / sum(tokens)
    rationale = f"{per_token:.4g} J per output token: {joules:.4g} J over {sum(tokens)} output tokens ({where})"
    return [per_request, Feedback(name=PER_OUTPUT_TOKEN, value=per_token, rationale=rationale)]


def _unmeasured(name: str, reason: str) -> Feedback:
    """No value, with the reason as the rationale and as the feedback's error (MLflow 3.4 takes
    no feedback without one of the two)."""
    why = f"not measured: {reason}"
    error = AssessmentError(error_code=NOT_MEASURED, error_message=why)
    return Feedback(name=name, value=None, rationale=why, error=error)


energy = scorer(name=SCORER_NAME, aggregations=["mean", "median", "p90"])(request_energy)
