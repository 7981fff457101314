"""``mlflow-energy compare-hardware``: results of one store measured on three hardware classes
(this test's CPU, an H100, an H200), logged by the project's own logging path from BenchResults
whose environment and device say where they ran, then compared: configurations matched across
classes whatever their device params, replicates combined, ratios and their bounds, overlapping
intervals, the baseline, the points without counterpart; the command end to end, a result folder
logged by `mlflow-energy log`, and the one-sentence refusals."""

from __future__ import annotations

import csv
import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from mlflow_energy.bench.result import BenchResult, PrefillWindow, RepetitionWindow, Status
from mlflow_energy.bench.stats import positive_interval
from mlflow_energy.bench.summary import conclude
from mlflow_energy.cli import main
from mlflow_energy.config import RunConfig, SweepConfig, WorkloadConfig, config_hash, point_hash
from mlflow_energy.meter.measurement import Measurement
from mlflow_energy.record.writer import log_result
from mlflow_energy.report import compare_hardware
from mlflow_energy.store import names
from mlflow_energy.store.reads import hardware_class

from processes import EXIT_CONFIG_ERROR, run_cli

CPU, H100, H200 = "Test CPU", "NVIDIA H100 80GB HBM3", "NVIDIA H200"
CPU_CLASS, H100_CLASS, H200_CLASS = f"cpu:{CPU}", f"gpu:{H100}", f"gpu:{H200}"
EXPERIMENT = "hw"
ENERGY, SPEED = names.ENERGY_PER_TOKEN, names.THROUGHPUT
NEW_TOKENS = 10


def measured(batch_size: int, gpu: str | None, energies: list[float], replicate: int = 0) -> BenchResult:
    """A FINISHED result of ``batch_size`` x 10 tokens, each window 2 s and 2 generate calls; on
    ``gpu`` (device cuda, GPU counters in the headline, the model's size learnt) or on the CPU
    (device cpu, RAPL in the headline)."""
    device = "cuda" if gpu else "cpu"
    config = RunConfig(workload=WorkloadConfig(batch_size=batch_size, new_tokens=NEW_TOKENS), device=device,
                       sweep=SweepConfig(replicates=3 if gpu else 1, replicate=replicate))  # fmt: skip

    def window(name: str, start: float, joules: float) -> Measurement:
        if gpu:
            return Measurement(name, start, 2.0, {"0": joules}, "nvml_counter", 1.0, 0.5, "estimate:cpu_load",
                               "estimate")  # fmt: skip
        return Measurement(name, start, 2.0, {}, "none", joules, 0.5, "rapl", "estimate")

    r = BenchResult(config=config, config_hash=config_hash(config), point_hash=point_hash(config))
    r.load, r.idle = window("load", 0.0, 30.0), window("idle", 2.0, 10.0)
    r.prefill = PrefillWindow(window("prefill", 4.0, 6.0), [0.1] * 10)
    r.repetitions = [RepetitionWindow(window(f"generate_{i + 1}", 6.0 + 2 * i, e), [1.0, 1.0])
                     for i, e in enumerate(energies)]  # fmt: skip
    r.status, r.device = Status.FINISHED, "cuda:0" if gpu else "cpu"
    r.environment = {"cpu_model": CPU, **({"gpus": [{"name": gpu}], "gpu_driver": "550.54"} if gpu else {})}
    r.model_parameters = 123456 if gpu else None  # learnt: on one side only, and still no difference
    conclude(r, [])
    return r


# batch 2: the CPU once, the H100 three times (replicates); batch 4: the CPU only;
# batch 8: the CPU and the H200, whose J/token intervals overlap.
RESULTS = {
    "cpu b2": (2, None, [400.0, 420.0, 410.0], 0),
    "h100 b2 #1": (2, H100, [40.0, 41.0, 40.5], 0),
    "h100 b2 #2": (2, H100, [44.0, 45.0, 44.5], 1),
    "h100 b2 #3": (2, H100, [42.0, 43.0, 42.5], 2),
    "cpu b4": (4, None, [700.0, 720.0, 710.0], 0),
    "cpu b8": (8, None, [1000.0, 1100.0, 1050.0], 0),
    "h200 b8": (8, H200, [1040.0, 1150.0, 1090.0], 0),
}


@pytest.fixture(scope="module")
def store(_empty_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, BenchResult]]:
    """One SQLite store holding RESULTS in experiment ``hw``, logged as a run logs them."""
    folder = tmp_path_factory.mktemp("hardware-store")
    shutil.copyfile(_empty_store, folder / "mlflow.db")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    results = {}
    for name, (batch, gpu, energies, replicate) in RESULTS.items():
        results[name] = measured(batch, gpu, energies, replicate)
        out = folder / name.replace(" ", "_").replace("#", "")
        out.mkdir()
        log_result(results[name], out, uri, EXPERIMENT, name)
    MlflowClient(tracking_uri=uri).create_experiment("empty")
    log_result(results["h200 b8"], folder / "h200_b8", uri, "copy", "h200 b8")  # the same measurement again
    return uri, results


@pytest.fixture(scope="module")
def report(store: tuple[str, dict[str, BenchResult]]) -> compare_hardware.HardwareReport:
    return compare_hardware.load([store[0]], [EXPERIMENT])


def by_batch(report: compare_hardware.HardwareReport, batch: int) -> compare_hardware.Configuration:
    (found,) = [c for c in report.configurations if c.params[names.PARAM_BATCH_SIZE] == str(batch)]
    return found


def test_configurations_match_across_hardware_whatever_the_device_params(store, report) -> None:
    uri, results = store
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    params = {r.info.run_name: r.data.params for r in client.search_runs([experiment])}
    assert (params["cpu b2"]["device"], params["cpu b2"]["resolved_device"]) == ("cpu", "cpu")
    assert (params["h100 b2 #1"]["device"], params["h100 b2 #1"]["resolved_device"]) == ("cuda", "cuda:0")
    assert params["h100 b2 #1"][names.PARAM_MODEL_PARAMETERS] == "123456"
    assert names.PARAM_MODEL_PARAMETERS not in params["cpu b2"]
    assert params["h100 b2 #2"]["sweep.replicate"] == "1"

    assert report.runs == len(RESULTS) and report.keys == [names.PARAM_BATCH_SIZE]
    assert [c.label for c in report.configurations] == [
        "workload.batch_size=2", "workload.batch_size=8", "workload.batch_size=4"]  # fmt: skip
    assert [list(c.cells) for c in report.configurations] == [[CPU_CLASS, H100_CLASS], [CPU_CLASS, H200_CLASS],
                                                              [CPU_CLASS]]  # fmt: skip
    assert report.classes == [CPU_CLASS, H100_CLASS, H200_CLASS]
    b2 = by_batch(report, 2)
    assert {cell.hardware: cell.runs for cell in b2.cells.values()} == {CPU_CLASS: 1, H100_CLASS: 3}
    assert b2.cells[CPU_CLASS].headline == "measured (cpu:rapl)"
    assert b2.cells[H100_CLASS].headline == "measured (gpu:nvml_counter)"
    assert b2.cells[H100_CLASS].other_domains and b2.cells[H100_CLASS].gpu_counts == ["1"]
    # A result logged into two of the experiments read counts once.
    both = compare_hardware.load([uri], [EXPERIMENT, "copy", EXPERIMENT])
    assert both.runs == len(RESULTS) and both.experiments == [EXPERIMENT, "copy"]
    assert by_batch(both, 8).cells[H200_CLASS].runs == 1


def test_replicates_combine_and_the_ratio_is_bounded_by_both_intervals(store, report) -> None:
    _, results = store
    b2 = by_batch(report, 2)
    cpu, h100 = b2.cells[CPU_CLASS], b2.cells[H100_CLASS]
    # The CPU ran once: its own interval, over its windows.
    own = results["cpu b2"].summary
    assert cpu.covers == "one run's windows" and cpu.verdict == compare_hardware.BASELINE
    assert cpu.figures.intervals[ENERGY].low == pytest.approx(own.energy_j_per_token_ci95_low)
    # The H100 ran three times: their mean, and an interval across the three.
    values = [results[f"h100 b2 #{i}"].summary.energy_j_per_token for i in (1, 2, 3)]
    mean = sum(values) / 3
    across = positive_interval(values, value=mean)
    assert h100.covers == "3 replicates"
    assert h100.value(ENERGY) == pytest.approx(mean)
    assert (h100.figures.intervals[ENERGY].low, h100.figures.intervals[ENERGY].high) == (
        pytest.approx(across.low), pytest.approx(across.high))  # fmt: skip
    # class / baseline, low = class low / baseline high, high = class high / baseline low
    ratio = h100.energy_ratio
    assert ratio.value == pytest.approx(mean / own.energy_j_per_token)
    assert ratio.low == pytest.approx(across.low / own.energy_j_per_token_ci95_high)
    assert ratio.high == pytest.approx(across.high / own.energy_j_per_token_ci95_low)
    assert ratio.low < ratio.value < ratio.high < 0.2
    assert h100.verdict == compare_hardware.LOWER
    assert h100.speed_ratio.value == pytest.approx(1.0)  # every window: 2 calls of 2 x 10 tokens in 2 s


def test_overlapping_intervals_cannot_be_told_apart_and_a_lonely_point_says_where_it_was_measured(report) -> None:
    h200 = by_batch(report, 8).cells[H200_CLASS]
    assert h200.verdict == compare_hardware.TIED == "cannot be told apart"
    assert h200.energy_ratio.low < 1 < h200.energy_ratio.high
    lonely = by_batch(report, 4)
    assert report.unmatched == [lonely] and not lonely.matched
    line = compare_hardware.lonely_line(lonely)
    assert line.startswith(f"workload.batch_size=4: only on {CPU_CLASS}, 1 run(s), J/token ")
    assert line.endswith(f"(closest on {H100_CLASS}: workload.batch_size 4 here, 2 there)")


def test_the_baseline_is_the_class_with_most_configurations_or_the_one_named(store) -> None:
    uri, _ = store
    assert compare_hardware.choose_baseline({"gpu:B": 2, "gpu:A": 2, "cpu:C": 1}, None) == "gpu:A"  # ties by name
    named = compare_hardware.load([uri], [EXPERIMENT], baseline="h100")
    assert named.baseline == H100_CLASS and named.classes == [H100_CLASS, CPU_CLASS, H200_CLASS]
    b2, b8 = by_batch(named, 2), by_batch(named, 8)
    cpu, h100 = b2.cells[CPU_CLASS], b2.cells[H100_CLASS]
    assert cpu.energy_ratio.value == pytest.approx(cpu.value(ENERGY) / h100.value(ENERGY))
    assert b2.cells[CPU_CLASS].verdict == compare_hardware.HIGHER
    assert b2.cells[H100_CLASS].verdict == compare_hardware.BASELINE
    assert b8.cells[CPU_CLASS].verdict == compare_hardware.NO_BASELINE and b8.cells[CPU_CLASS].energy_ratio is None
    # the whole name
    assert compare_hardware.choose_baseline({"gpu:H100": 1, "gpu:H100 NVL": 1}, "GPU:h100") == "gpu:H100"
    with pytest.raises(LookupError, match=r"^--baseline 'nvidia' matches 2 hardware classes \(gpu:NVIDIA H100"):
        compare_hardware.load([uri], [EXPERIMENT], baseline="nvidia")
    with pytest.raises(LookupError, match=rf"^--baseline 'A100' matches no hardware class; pick one of: {CPU_CLASS}"):
        compare_hardware.load([uri], [EXPERIMENT], baseline="A100")


def test_what_a_configuration_is() -> None:
    params = {"model.name": "tiny", "model.pruning.method": "magnitude", "workload.batch_size": "4",
              "scenario": "batch", "serving.concurrency": "8", "device": "cuda", "resolved_device": "cuda:0",
              "serving.gpus": "[0]",
              "tracking.uri": "x", "register.name": "x", "sweep.replicate": "2", "bench.target_ci": "0.02",
              "carbon.pue": "1.2", "quality.enabled": "True", "serving.duration_s": "20", "serving.slo_ttft_s": "1",
              **dict.fromkeys(names.LEARNT_PARAMS, "1")}  # fmt: skip
    assert compare_hardware.configuration_params(params) == {"model.name": "tiny", "model.pruning.method": "magnitude",
                                                     "workload.batch_size": "4", "scenario": "batch",
                                                     "serving.concurrency": "8"}  # fmt: skip
    assert compare_hardware.differing_keys([{"model.name": "a"}]) == ["model.name"]
    assert compare_hardware.differing_keys([{"a": "1", "b": "2"}, {"a": "1"}]) == ["b"]
    assert compare_hardware.label({"a": "1"}, ["a", "b"]) == "a=1, b=(unset)"
    assert compare_hardware.headline_domains("ESTIMATE (cpu:estimate:cpu_load, ram:estimate)") == {"cpu", "ram"}


def test_a_run_on_a_gpu_hosts_cpu_is_a_cpu_run() -> None:
    def run(tags: dict[str, str]) -> Any:
        return SimpleNamespace(data=SimpleNamespace(tags=tags))

    gpu_host = {names.TAG_GPU_MODEL: H100, names.TAG_CPU_MODEL: CPU}
    assert hardware_class(run({**gpu_host, names.TAG_DEVICE: "cuda:0"})) == H100_CLASS
    assert hardware_class(run({**gpu_host, names.TAG_DEVICE: "cpu"})) == CPU_CLASS


def sentences(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_the_command_writes_the_table_the_markdown_and_the_plot(store, tmp_path: Path) -> None:
    uri, _ = store
    done = run_cli(tmp_path, "compare-hardware", "--experiment", EXPERIMENT, "--tracking-uri", uri, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "hardware-report"
    assert f"Baseline: {CPU_CLASS}; 2 of 3 configuration(s) measured on two hardware classes or more, from 7 run(s)." \
        in sentences(done.stdout)  # fmt: skip
    assert f"  workload.batch_size=4: only on {CPU_CLASS}, 1 run(s), J/token " in done.stdout
    for name in ("hardware.csv", "hardware.md", "hardware.png"):
        assert f"Wrote {Path('hardware-report') / name}" in sentences(done.stdout)
        assert (out / name).stat().st_size > 100
    rows = list(csv.DictReader((out / "hardware.csv").open()))
    assert [(r["configuration"], r["hardware"], r["runs"], r["interval"], r["vs_baseline"]) for r in rows] == [
        ("workload.batch_size=2", CPU_CLASS, "1", "one run's windows", "baseline"),
        ("workload.batch_size=2", H100_CLASS, "3", "3 replicates", "lower J/token"),
        ("workload.batch_size=8", CPU_CLASS, "1", "one run's windows", "baseline"),
        ("workload.batch_size=8", H200_CLASS, "1", "one run's windows", "cannot be told apart"),
        ("workload.batch_size=4", CPU_CLASS, "1", "one run's windows", "baseline"),
    ]  # fmt: skip
    assert rows[1]["headline_domains_differ"] == "yes" and rows[4]["counterpart"] == "no"
    assert float(rows[1][f"{ENERGY}_ratio_low"]) < float(rows[1][f"{ENERGY}_ratio"])
    markdown = (out / "hardware.md").read_text()
    assert "| workload.batch_size=2 | cpu:Test CPU | 1 | one run's windows | " in markdown
    assert "| 3 | 3 replicates | " in markdown and " | lower J/token | measured (gpu:nvml_counter) |" in markdown
    assert compare_hardware.INTERVALS_NOTE in markdown
    assert "## No counterpart" in markdown and "- workload.batch_size=4: only on cpu:Test CPU" in markdown


def test_a_result_folder_logged_by_the_log_command_finds_its_counterpart(_empty_store: Path, tmp_path: Path) -> None:
    """Two machines' results in one store: the CPU's logged as a run logs it, the H100's saved
    as a result folder and logged later with `mlflow-energy log`. Before that, the command says
    that nothing has a counterpart and still writes the files."""
    shutil.copyfile(_empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "cpu").mkdir()
    log_result(measured(2, None, [400.0, 410.0, 405.0]), tmp_path / "cpu", uri, "two", "cpu")
    alone = compare_hardware.load([uri], ["two"])
    assert alone.matched == [] and len(alone.unmatched) == 1
    compare_hardware.write(alone, tmp_path / "alone", [uri])
    assert "No configuration was measured on two hardware classes." in (tmp_path / "alone" / "hardware.md").read_text()

    result = measured(2, H100, [40.0, 41.0, 40.5])
    result.config = replace(result.config, tracking=replace(result.config.tracking, uri=uri, experiment="two"))
    (tmp_path / "h100").mkdir()
    result.write(tmp_path / "h100")
    logged = run_cli(tmp_path, "log", "h100", timeout=120)
    assert logged.returncode == 0, logged.stderr[-3000:]
    (matched,) = compare_hardware.load([uri], ["two"]).matched
    assert list(matched.cells) == [CPU_CLASS, H100_CLASS] and matched.label == "model.name=tiny-stories"


def test_each_machines_own_store_compares_in_one_report(_empty_store: Path, tmp_path: Path) -> None:
    """A CPU's store and an H100's store, read together; a result logged into both counts once."""
    uris = []
    for machine, gpu, energies in (("cpu", None, [400.0, 410.0, 405.0]), ("h100", H100, [40.0, 41.0, 40.5])):
        shutil.copyfile(_empty_store, tmp_path / f"{machine}.db")
        uris.append(f"sqlite:///{tmp_path / f'{machine}.db'}")
        (tmp_path / machine).mkdir()
        log_result(measured(2, gpu, energies), tmp_path / machine, uris[-1], "fleet", machine)
    copied = measured(4, H100, [70.0, 71.0, 70.5])
    for uri in uris:
        log_result(copied, tmp_path / "h100", uri, "fleet", "copied")
    assert compare_hardware.load([uris[0]], ["fleet"]).matched == []  # one store alone holds one machine's runs
    main(["compare-hardware", "--experiment", "fleet", "--tracking-uri", uris[0], "--tracking-uri", uris[1],
          "--baseline", "cpu", "--out", str(tmp_path / "out")])  # fmt: skip
    rows = list(csv.DictReader((tmp_path / "out" / "hardware.csv").open()))
    assert [(r["configuration"], r["hardware"], r["runs"], r["vs_baseline"]) for r in rows] == [
        ("workload.batch_size=2", CPU_CLASS, "1", "baseline"),
        ("workload.batch_size=2", H100_CLASS, "1", "lower J/token"),
        ("workload.batch_size=4", H100_CLASS, "1", "baseline did not measure it"),
    ]  # fmt: skip
    assert all(uri.removeprefix("sqlite:///") in (tmp_path / "out" / "hardware.md").read_text() for uri in uris)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment", "nope"], "there is no experiment named 'nope'; check --experiment."),
        (["--experiment", "empty"], "experiment 'empty' holds no FINISHED measurement run; check --experiment."),
        (["--experiment", EXPERIMENT, "--baseline", "tpu"],
         f"--baseline 'tpu' matches no hardware class; pick one of: {CPU_CLASS}, {H100_CLASS}, {H200_CLASS}."),
    ],
)  # fmt: skip
def test_a_refusal_is_one_sentence_and_exit_code_2(store, tmp_path: Path, capsys: Any, args: list[str],
                                                   message: str) -> None:  # fmt: skip
    uri, _ = store
    with pytest.raises(SystemExit) as ended:
        main(["compare-hardware", *args, "--tracking-uri", uri, "--out", str(tmp_path / "out")])
    assert ended.value.code == EXIT_CONFIG_ERROR
    assert capsys.readouterr().err == f"mlflow-energy: error: {message}\n"
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_a_store_that_does_not_exist_is_not_created(tmp_path: Path, capsys: Any) -> None:
    missing = tmp_path / "nothing.db"
    with pytest.raises(SystemExit) as ended:
        main(["compare-hardware", "--experiment", EXPERIMENT, "--tracking-uri", f"sqlite:///{missing}"])
    assert ended.value.code == EXIT_CONFIG_ERROR and not missing.exists()
    expected = f"there is no tracking store at {missing}; check --tracking-uri."
    assert capsys.readouterr().err == f"mlflow-energy: error: {expected}\n"
