"""A sweep as its user reads it, on the compression experiment (5 points, quality on): the
figures of each lever in its runs; then the MLflow UI, in headless Chromium against a real
`mlflow server`: the link the console printed opens the comparison (no click), the experiment
page gets there in two, a child's description and System metrics tab show, and a link in the
parent's answer opens a child. One sweep serves both.
``MLFLOW_ENERGY_UI_SCREENSHOTS=DIR`` keeps the screenshots (docs/ui/)."""

from __future__ import annotations

import csv
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from processes import QUICK, run_cli, sweep_runs

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
# Keep MLflow's assistant panel and its one-time "Detect Issues" tip shut; the workflow toggle is
# left at its default (GenAI), as a new user finds it.
INIT = ("localStorage.setItem('mlflow.assistant.panelOpen_v1','false');"
        "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1','true');"
        "localStorage.setItem('mlflow.detectIssues.guidanceShown_v1','true');")  # fmt: skip
SECTION = "mlflow-energy: which point is most efficient"
SCATTER = "throughput/tokens_per_s vs. energy/j_per_token"
WAIT_MS = 30_000
# What the comparison's charts drew: the points of the scatter (plotly keeps a chart's data on its
# element) with their colours, and the runs the parallel coordinates draw (the data MLflow hands
# its canvas chart after dropping the runs that lack a selected param; -1 until it is drawn).
PLOTTED_JS = """(() => {
  const scatter = [...document.querySelectorAll('.js-plotly-plot')].flatMap(gd => gd.data || [])
    .filter(t => t.type === 'scatter');
  const card = [...document.querySelectorAll('[data-testid=experiment-view-compare-runs-card]')]
    .find(c => c.textContent.includes('Parallel Coordinates'));
  const canvas = card && card.querySelector('canvas');
  let fiber = canvas && Object.entries(canvas.parentElement).find(([k]) => k.startsWith('__reactFiber'))?.[1];
  while (fiber && !(fiber.memoizedProps && Array.isArray(fiber.memoizedProps.data)
                    && fiber.memoizedProps.selectedParams)) fiber = fiber.return;
  return {parallel: fiber ? fiber.memoizedProps.data.length : -1,
          scatter: scatter.reduce((n, t) => n + t.x.length, 0),
          colours: scatter.flatMap(t => [].concat(t.marker.color))};
})()"""


@pytest.fixture(scope="module")
def compression_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The compression experiment's sweep in a SQLite store: its folder and the finished command."""
    folder = tmp_path_factory.mktemp("compression")
    proc = run_cli(folder, "run", "-m", "+experiment=compression", *QUICK, "bench.max_duration_s=1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, proc


def test_the_compression_grid_measures_each_lever_with_quality_beside_energy(compression_sweep, tmp_path: Path) -> None:
    client, parents, children = sweep_runs(compression_sweep[0])
    by_name = {c.info.run_name.removeprefix("+compression="): c for c in children}
    assert set(by_name) == {"teacher", "distilled", "magnitude_50", "drop_2_layers", "dynamic_int8"}
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.metrics["quality/perplexity"] > 1 and child.data.metrics["energy/j_per_token"] > 0
    params = {name: child.data.params for name, child in by_name.items()}
    perplexity = {name: child.data.metrics["quality/perplexity"] for name, child in by_name.items()}
    assert int(params["dynamic_int8"]["model.int8_layers"]) >= 28
    assert "model.int8_layers" not in params["teacher"] and "model.pruning.method" not in params["teacher"]
    magnitude = params["magnitude_50"]
    assert magnitude["model.pruning.method"] == "magnitude" and magnitude["model.sparsity_reached"] == "0.5000"
    assert int(magnitude["model.nonzero_parameters"]) < int(magnitude["model.parameters"])
    dropped = params["drop_2_layers"]
    assert dropped["model.decoder_layers"] == "2" and dropped["model.layers_removed"] == "[1, 2]"
    # The student has the shape of the teacher without layers 1 and 2, and distillation won back
    # most of what dropping those layers cost.
    assert params["distilled"]["model.name"] == "tiny-stories-distilled"
    assert params["distilled"]["model.parameters"] == dropped["model.parameters"]
    assert perplexity["distilled"] < perplexity["drop_2_layers"] * 0.8
    assert perplexity["teacher"] < perplexity["drop_2_layers"]
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"pareto.png", "summary.csv"} <= artifacts
    rows = list(csv.DictReader(Path(client.download_artifacts(parents[0].info.run_id, "summary.csv",
                                                               str(tmp_path))).open()))  # fmt: skip
    assert all(float(r["quality/perplexity"]) > 1 for r in rows)


@pytest.fixture(scope="module")
def sweep(compression_sweep):
    """The page the sweep's console output links, and a real `mlflow server` on its store. Only
    the pruned and shrunk points log params such as model.pruning.*: MLflow's parallel
    coordinates would drop the rest."""
    folder, proc = compression_sweep
    line = (r"^Compare the sweep's points in the MLflow UI: mlflow ui --backend-store-uri sqlite:///mlflow\.db, "
            r"then open http://127\.0\.0\.1:5000/(#/\S+)$")
    printed = re.search(line, proc.stdout, re.M)
    assert printed, proc.stdout[-3000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--host", "127.0.0.1", "--port", str(port), "-w", "1"],
        cwd=folder, env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    yield folder, base, printed.group(1)
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):  # CI installs it: there a missing browser fails
        pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = chromium.new_context(viewport={"width": 1600, "height": 1200})
        context.add_init_script(INIT)
        yield context
        chromium.close()


def screenshot(page, name: str) -> None:
    folder = os.environ.get("MLFLOW_ENERGY_UI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(3000)  # for the picture only: every chart drawn, not just the first
        page.screenshot(path=str(Path(folder) / name))


def expect_comparison(page, children: list) -> None:
    """The comparison: its chart section, the scatter and parallel coordinates, every child."""
    from playwright.sync_api import expect

    expect(page.get_by_text(SECTION).first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text(SCATTER).first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Parallel Coordinates").first).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=WAIT_MS)
    for child in children:
        expect(page.get_by_role("link", name=child.info.run_name, exact=True).first).to_be_visible()
    expect(page.get_by_text(f"{len(children)} matching runs")).to_be_visible()  # the parent is not among them
    # Every point drawn, in a colour of its own.
    page.get_by_text("Parallel Coordinates").first.scroll_into_view_if_needed()  # charts draw once in view
    page.wait_for_function(f"() => {PLOTTED_JS}.parallel >= 0", timeout=WAIT_MS)
    plotted = page.evaluate(PLOTTED_JS)
    assert plotted["parallel"] == plotted["scatter"] == len(children), plotted
    assert len(set(plotted["colours"])) == len(children), plotted


def test_the_printed_link_and_two_clicks_open_the_comparison(sweep, browser) -> None:
    folder, base, printed = sweep
    _, _, children = sweep_runs(folder)
    assert len(children) == 5
    page = browser.new_page()
    page.goto(f"{base}/{printed}")
    expect_comparison(page, children)
    screenshot(page, "comparison.png")
    # From `mlflow ui`'s first page: the experiment (click 1), then the line its description
    # starts with (click 2), which the UI opens in a new tab.
    page.goto(f"{base}/")
    page.get_by_role("link", name="mlflow-energy", exact=True).first.click()
    with browser.expect_page() as opened:
        page.get_by_role("link", name="Open the newest sweep's comparison").first.click(timeout=WAIT_MS)
    expect_comparison(opened.value, children)
    opened.value.close()
    page.close()


def test_a_childs_description_and_system_metrics_and_a_link_from_the_parents_answer(sweep, browser) -> None:
    from playwright.sync_api import expect

    folder, base, _ = sweep
    _, parents, children = sweep_runs(folder)
    parent, child = parents[0], children[0]
    page = browser.new_page()
    page.goto(f"{base}/#/experiments/{child.info.experiment_id}/runs/{child.info.run_id}")
    expect(page.get_by_text("energy per token (headline)").first).to_be_visible(timeout=WAIT_MS)
    page.get_by_text("Show more").first.click()
    expect(page.get_by_text("Energy sources:").first).to_be_visible()
    expect(page.get_by_role("cell", name="throughput").first).to_be_visible()
    page.get_by_role("tab", name="System metrics").click()
    expect(page.get_by_text("cpu_utilization_percentage").first).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("benchmark_phase").first).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=WAIT_MS)  # drawn, not only titled
    screenshot(page, "system_metrics.png")
    # The parent's answer links the most energy-efficient point's run; the UI opens it in a new tab.
    best = min(children, key=lambda c: c.data.metrics["energy/j_per_token"])
    page.goto(f"{base}/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}")
    expect(page.get_by_text(re.compile("Most energy-efficient:|points cannot be told apart")).first).to_be_visible(
        timeout=WAIT_MS)  # fmt: skip
    with browser.expect_page() as opened:
        page.get_by_role("link", name=best.info.run_name, exact=True).first.click()
    expect(opened.value.get_by_role("heading", name=best.info.run_name).first).to_be_visible(timeout=WAIT_MS)
    assert best.info.run_id in opened.value.url
    page.close()
