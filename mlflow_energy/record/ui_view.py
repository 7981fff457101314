"""A sweep's comparison in the MLflow UI, opened by one link: the measured points only, every
one visible and sorted by the energy figure, the key columns, and one chart section with the
energy-against-speed scatter, parallel coordinates over the swept params and the few bar charts
that matter. Pure: record/writer.py writes the view and the experiment's description.

MLflow keeps such a view as an experiment tag in an internal format (the runs page's "Views"
menu reads it): ``mlflow.sharedViewState.<key>`` holding ``{"name", "createdAt", "updatedAt",
"state"}``, the state deflated and base64-encoded behind ``deflate;``. The format is the UI's,
not an API, so the view is written only for the MLflow versions it was tested with
(``TESTED_UI_VERSIONS``); elsewhere the tool skips it and says nothing.
"""

from __future__ import annotations

import base64
import colorsys
import json
import time
import zlib
from dataclasses import dataclass
from typing import Any

from mlflow_energy.store import names
from mlflow_energy.store.uris import is_server, ui_address

TESTED_UI_VERSIONS = ("3.17.2", "3.18.0")
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
VIEW_KEY_PREFIX = "mlflow-energy-"
KEPT_VIEWS = 10  # the tool's newest views kept per experiment (the UI lists at most 40 views in all)
_MAX_TAG_CHARS = 20_000  # MLflow's limit on an experiment tag's value
_SECTION = "mlflow-energy-answer"
# The experiment description's part the tool owns, between these markers (the rest is the user's).
NOTE_START, NOTE_END = "<!-- mlflow-energy: newest sweep -->", "<!-- /mlflow-energy -->"


@dataclass(frozen=True)
class Comparison:
    """What a sweep's comparison charts: the energy figure (lower is better) against the speed
    figure, the swept params, and the runs that measured."""

    energy: str
    speed: str
    quality: str | None
    params: list[str]
    run_ids: list[str]
    other_metrics: list[str]  # every other metric the runs logged: kept off the view's charts
    chart_params: list[str]  # of ``params``, those every run logged
    run_colours: dict[str, str]  # run id -> its point's colour (``mlflow.runColor``), one per point


@dataclass(frozen=True)
class View:
    """A comparison as the UI shows it: the view's key and tag value on the experiment, and the
    colour each measured run is drawn in."""

    key: str
    tag: str
    run_colours: dict[str, str]


def point_colours(count: int) -> list[str]:
    """``count`` colours as far apart as hues go (the UI's own colours come from a hash of the
    run id, and two of five points drew alike)."""
    return ["#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in colorsys.hsv_to_rgb(i / count, 0.75, 0.8)))
            for i in range(count)]  # fmt: skip


def ui_version(tracking_uri: str) -> str | None:
    """The MLflow version whose UI shows this store: the server's (``GET /version``), or the
    installed one that ``mlflow ui`` would run; None when the server does not say."""
    if not is_server(tracking_uri):
        import mlflow

        return mlflow.__version__
    import urllib.request

    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/version", timeout=5) as answer:
            return answer.read().decode().strip()
    except (OSError, ValueError):
        return None


def view_key(sweep_id: str) -> str:
    return VIEW_KEY_PREFIX + sweep_id


def view_state(c: Comparison) -> dict[str, Any]:
    """The runs page's state: chart mode, the measured runs sorted by the energy figure."""
    metrics = [c.energy, c.speed, *([c.quality] if c.quality else [])]

    def card(uuid: str, kind: str, **fields: Any) -> dict[str, Any]:
        return {"uuid": uuid, "type": kind, "metricSectionId": _SECTION, "isGenerated": False, "deleted": False,
                "runsCountToCompare": len(c.run_ids), **fields}  # fmt: skip

    charts = [
        card("scatter", "SCATTER", xaxis={"key": c.speed, "type": "METRIC"}, yaxis={"key": c.energy, "type": "METRIC"}),
        # MLflow's parallel coordinates drop a run that lacks a selected param (a pruning key of
        # the pruned points only): such params stay in the table's columns, off this chart.
        card("parallel", "PARALLEL", selectedParams=c.chart_params, selectedMetrics=metrics, showAllRuns=True),
        *(card(f"bar-{i}", "BAR", metricKey=m) for i, m in enumerate(metrics)),
        # The UI draws a chart for every metric no card names: these placeholders keep them off.
        *({"uuid": f"hidden-{i}", "type": "BAR", "metricKey": m, "metricSectionId": _SECTION, "isGenerated": True,
           "deleted": True} for i, m in enumerate(c.other_metrics)),
    ]  # fmt: skip
    return {
        "searchFilter": "attributes.run_id IN (" + ", ".join(f"'{r}'" for r in c.run_ids) + ")",
        "orderByKey": f"metrics.`{c.energy}`",
        "orderByAsc": True,  # sorting by a metric also lists every child as a row of its own
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "modelVersionFilter": "All Runs",
        "datasetsFilter": [],
        "selectedColumns": [*(f"metrics.`{m}`" for m in metrics), *(f"params.`{p}`" for p in c.params),
                            f"tags.`{names.TAG_TRUST}`", "attributes.`Dataset`"],  # fmt: skip
        "runsHiddenMode": "SHOW_ALL",
        "compareRunCharts": charts,
        "compareRunSections": [{"uuid": _SECTION, "name": "mlflow-energy: which point is most efficient",
                                "display": True, "isReordered": True, "deleted": False, "isGenerated": False}],
        "isAccordionReordered": True,
        "hideEmptyCharts": True,
        "useGroupedValuesInCharts": True,
        "groupBy": None,
        "groupsExpanded": {},
        "viewMaximized": False,
        "runListHidden": False,
        "columnOrder": [],
        "columnWidths": {},
        "globalLineChartConfig": {"xAxisKey": "step", "lineSmoothness": 0, "selectedXAxisMetricKey": ""},
    }


def view_tag(name: str, state: dict[str, Any], created_ms: int | None = None) -> str | None:
    """The experiment tag's value: the UI's envelope around the deflated state; None when it
    would exceed MLflow's limit on a tag (a sweep of many hundred points)."""
    deflated = zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 9)
    now = int(time.time() * 1000)
    envelope = json.dumps({"name": name, "createdAt": created_ms or now, "updatedAt": now,
                           "state": "deflate;" + base64.b64encode(deflated).decode()})  # fmt: skip
    return envelope if len(envelope) <= _MAX_TAG_CHARS else None


def read_view_tag(value: str) -> dict[str, Any]:
    """The state a view tag holds (the inverse of ``view_tag``): for tests and pruning."""
    envelope = json.loads(value)
    state = envelope["state"]
    return json.loads(zlib.decompress(base64.b64decode(state.removeprefix("deflate;"))))


def views_to_prune(experiment_tags: dict[str, str], keep: int = KEPT_VIEWS) -> list[str]:
    """The tool's view tags beyond its ``keep`` newest (the user's own views are never touched)."""
    ours = []
    for key, value in experiment_tags.items():
        if key.startswith(VIEW_TAG_PREFIX + VIEW_KEY_PREFIX):
            try:
                ours.append((int(json.loads(value).get("updatedAt", 0)), key))
            except (ValueError, AttributeError, TypeError):
                ours.append((0, key))
    return [key for _, key in sorted(ours, reverse=True)[keep:]]


def view_url(tracking_uri: str, experiment_id: str, key: str) -> str:
    """The link that opens the view: on the tracking server, or on the UI `mlflow ui` starts."""
    return ui_address(tracking_uri, view_path(experiment_id, key))


def view_path(experiment_id: str, key: str) -> str:
    """The view's address inside the UI (for links in descriptions, which the UI opens itself)."""
    return (f"#/experiments/{experiment_id}/runs?viewStateShareKey={key}&compareRunsMode=CHART"
            "&workflowType=machine_learning")  # fmt: skip


def experiment_note(current: str, line: str) -> str:
    """The experiment's description with the tool's part (between the markers) set to ``line``;
    whatever the user wrote stays as it was, after it."""
    user = current
    if NOTE_START in current and NOTE_END in current:
        head, _, rest = current.partition(NOTE_START)
        user = head + rest.partition(NOTE_END)[2]
    user = user.strip()
    return f"{NOTE_START}\n{line}\n{NOTE_END}" + (f"\n\n{user}" if user else "")
