"""The MLflow UI, in headless Chromium against a real `mlflow server`: a sweep reads as one
parent with its children, and the metrics land in chart sections by their prefix."""

from __future__ import annotations

import os
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
# Keep MLflow's assistant panel shut and open the "model training" views.
INIT = ("localStorage.setItem('mlflow.assistant.panelOpen_v1','false');"
        "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1','true');"
        "localStorage.setItem('mlflow.workflowType_v1','\"machine_learning\"');")  # fmt: skip

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):  # CI installs it: there a missing browser fails
    pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("ui")
    proc = run_cli(folder, "run", "-m", *QUICK, "workload.batch_size=1,4")
    assert proc.returncode == 0, proc.stderr[-3000:]
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
    yield folder, base
    server.terminate()
    server.wait(timeout=30)


def test_sweep_children_and_chart_sections_in_the_ui(server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    folder, base = server
    _, parents, children = sweep_runs(folder)
    parent = parents[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1800, "height": 2700})
        context.add_init_script(INIT)
        page = context.new_page()
        page.goto(f"{base}/#/experiments/{parent.info.experiment_id}/runs?compareRunsMode=CHART")
        expect(page.get_by_text(parent.info.run_name).first).to_be_visible(timeout=30_000)
        # Children are collapsed under their parent until it is expanded.
        page.locator("[role=row]", has_text=parent.info.run_name).locator(
            'button[data-component-id*="runnamecellrenderer"]'
        ).first.click()
        for child in children:
            expect(page.get_by_text(child.info.run_name).first).to_be_visible(timeout=15_000)
        for section in ("energy", "latency", "throughput", "quality", "emissions", "memory", "measurement"):
            expect(page.get_by_text(section, exact=True).first).to_be_visible(timeout=15_000)
        expect(page.get_by_text("energy/j_per_token", exact=True).first).to_be_visible(timeout=15_000)
        page.screenshot(path=os.environ.get("MLFLOW_ENERGY_UI_SCREENSHOT", str(tmp_path / "charts.png")))
        browser.close()
