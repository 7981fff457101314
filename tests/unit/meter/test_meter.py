"""The energy meter against a fake NVML: counter deltas, sampling fallback, rejected readings,
visible-device mapping."""

from __future__ import annotations

import time

import pytest

from mlflow_energy.meter.energy_meter import EnergyMeter
from mlflow_energy.meter.gpu import NvmlGpus, nvml_compute_capabilities, resolve_visible_handles
from mlflow_energy.meter.measurement import EnergySource
from mlflow_energy.meter.sampler import PowerSampler

from fake_nvml import ClockedCounter, FakeGpu, FakeNvml

UUIDS = ["GPU-aaaa1111", "GPU-bbbb2222", "GPU-cccc3333"]


def meter_for(gpus: list[FakeGpu], **kwargs) -> EnergyMeter:
    return EnergyMeter(gpus=NvmlGpus(nvml=FakeNvml(gpus), **kwargs), sample_period_s=0.01)


def test_counter_difference_per_visible_gpu() -> None:
    # Each counter is read once at probe, once at window start, once at window end.
    gpus = [FakeGpu(UUIDS[0], energy_mj=[0, 1_000, 251_000]), FakeGpu(UUIDS[1], energy_mj=[0, 5_000, 105_500])]
    meter = meter_for(gpus)
    with meter.window("generate") as w:
        time.sleep(0.05)
    meter.close()
    m = w.measurement
    assert m.gpu_source == EnergySource.NVML_COUNTER
    assert m.gpu_j == {"0": 250.0, "1": 100.5}
    assert m.gpu_total_j == pytest.approx(350.5)
    assert m.total_j == pytest.approx(350.5)  # no host meter: GPU only
    assert m.valid and m.duration_s >= 0.05


@pytest.mark.parametrize("idle_first", [False, True])
def test_aligned_edges_read_the_counter_at_its_updates(idle_first: bool) -> None:
    """A counter that moves every 100 ms (an H100's): an unaligned 0.5 s window can read 40%
    off; aligned, the energy is the power times the window, whatever the phase of the counter.
    The windows are long enough that a read seen 25 ms late (a busy machine) stays within 5%."""
    period_s = 0.1
    gpu = FakeGpu(UUIDS[0], counter=ClockedCounter(power_w=200.0, period_s=period_s))
    meter = EnergyMeter(gpus=NvmlGpus(nvml=FakeNvml([gpu])), sample_period_s=None, align_to_counter=True)
    if idle_first:  # the edge waits are then valued at the idle baseline's power (200 W here too)
        meter.measure_idle(0.5)
    with meter.window("generate") as w:
        time.sleep(0.5)
    meter.close()
    m = w.measurement
    assert m.gpu_j["0"] == pytest.approx(200.0 * m.duration_s, rel=0.05)
    assert 0 < m.edge_wait_s <= 2 * period_s + 0.01  # at most one counter period at each edge
    assert m.edge_idle_j == pytest.approx(200.0 * m.edge_wait_s, rel=0.1)


def test_counter_going_backwards_is_rejected_not_logged() -> None:
    meter = meter_for([FakeGpu(UUIDS[0], energy_mj=[0, 9_000, 4_000])])
    with meter.window("generate") as w:
        pass
    meter.close()
    assert w.measurement.gpu_j == {}
    assert not w.measurement.valid
    assert "went backwards" in w.measurement.problems[0]


def test_counter_that_does_not_move_is_rejected() -> None:
    meter = meter_for([FakeGpu(UUIDS[0], energy_mj=[0, 7_000, 7_000])])
    with meter.window("generate") as w:
        time.sleep(0.02)
    meter.close()
    assert w.measurement.gpu_j == {}
    assert "did not move" in w.measurement.problems[0]


def test_missing_counter_falls_back_to_power_sampling() -> None:
    gpu = FakeGpu(UUIDS[0], energy_mj=None, power_mw=200_000)  # 200 W, constant
    meter = meter_for([gpu])
    with meter.window("generate") as w:
        time.sleep(0.3)
    meter.close()
    m = w.measurement
    assert m.gpu_source == EnergySource.POWER_SAMPLING
    # Constant power: the integral is power x duration, whatever the sample times.
    assert m.gpu_j["0"] == pytest.approx(200.0 * m.duration_s, rel=1e-6)


def test_power_sampling_too_short_window_is_reported() -> None:
    meter = EnergyMeter(gpus=NvmlGpus(nvml=FakeNvml([FakeGpu(UUIDS[0], energy_mj=None)])), sample_period_s=10)
    meter.sampler.sample_now = lambda: None  # no boundary samples: nothing to integrate
    with meter.window("prefill") as w:
        pass
    meter.close()
    assert not w.measurement.valid
    assert "too short to integrate" in w.measurement.problems[0]


def test_no_nvml_measures_no_gpu_and_says_why() -> None:
    gpus = NvmlGpus(disabled_reason="the run uses the CPU")
    meter = EnergyMeter(gpus=gpus, sample_period_s=0.05)
    with meter.window("generate") as w:
        time.sleep(0.3)  # six sampling periods: three rows even when a busy machine delays the sampler
    meter.close()
    assert w.measurement.gpu_source == EnergySource.NONE
    assert w.measurement.gpu_j == {}
    assert gpus.unavailable_reason == "the run uses the CPU"
    host_rows = [s for s in meter.timeline() if s.device == "host"]
    assert len(host_rows) >= 3  # the timeline still records the host


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, UUIDS),  # unset: every GPU
        ("", []),  # empty: none
        ("2,0", [UUIDS[2], UUIDS[0]]),  # CUDA index order follows the list
        ("GPU-bbbb", [UUIDS[1]]),  # unique UUID prefix
        ("1,7,0", [UUIDS[1]]),  # CUDA stops at the first entry naming no device
        ("GPU-,0", []),  # an ambiguous prefix stops the list too
    ],
)
def test_cuda_visible_devices_mapping(visible: str | None, expected: list[str]) -> None:
    nvml = FakeNvml([FakeGpu(u) for u in UUIDS])
    assert [h.uuid for _, h in resolve_visible_handles(nvml, visible)] == expected


def test_compute_capabilities_follow_the_visible_devices_and_leave_nvml_closed() -> None:
    nvml = FakeNvml([FakeGpu(UUIDS[0], compute_capability=(8, 0)), FakeGpu(UUIDS[1], compute_capability=(9, 0))])
    assert nvml_compute_capabilities("1,0", nvml) == [(9, 0), (8, 0)]
    assert nvml_compute_capabilities("", nvml) == []
    assert not nvml.initialised


def test_torch_uuids_win_over_the_environment() -> None:
    nvml = FakeNvml([FakeGpu(u) for u in UUIDS])
    gpus = NvmlGpus(nvml=nvml, cuda_visible_devices="0", cuda_uuids={0: "cccc3333", 1: "aaaa1111"})
    assert [(d.cuda_index, d.uuid) for d in gpus.devices] == [(0, UUIDS[2]), (1, UUIDS[0])]


def test_only_the_gpu_a_run_uses_is_measured() -> None:
    nvml = FakeNvml([FakeGpu(u) for u in UUIDS])
    gpus = NvmlGpus(nvml=nvml, cuda_uuids={1: "bbbb2222"})  # cuda:1 of three visible GPUs
    assert [(d.cuda_index, d.uuid) for d in gpus.devices] == [(1, UUIDS[1])]


def test_timeline_records_gpu_state() -> None:
    meter = meter_for([FakeGpu(UUIDS[0], energy_mj=[0, 1, 2], power_mw=150_500)])
    time.sleep(0.05)
    meter.close()
    rows = [s for s in meter.timeline() if s.device == "gpu0"]
    assert rows and rows[0].power_w == 150.5 and rows[0].sm_clock_mhz == 1980 and rows[0].memory_used_mb == 2048


def test_sampler_reads_power_every_tick_and_the_rest_once_a_second() -> None:
    gpus = NvmlGpus(nvml=FakeNvml([FakeGpu(UUIDS[0], power_mw=150_500)]))
    sampler = PowerSampler(gpus, 0.05, time.perf_counter())
    sampler.start()
    time.sleep(1.5)
    sampler.stop()
    rows = [s for s in sampler.samples() if s.device == "gpu0"]
    full = [s for s in rows if s.temperature_c is not None]
    assert all(s.power_w == 150.5 and s.sm_clock_mhz == 1980 for s in rows)
    assert len(full) == 2 and len(rows) >= 20  # ticks at 0 s and 1 s carry every field
    assert len([s for s in sampler.samples() if s.device == "host"]) == 2
    assert 0 < sampler.busy_s < 1.5


def test_the_timeline_stays_in_time_order_when_window_edges_sample_and_the_clock_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpus = NvmlGpus(nvml=FakeNvml([FakeGpu(UUIDS[0], power_mw=150_500)]))
    sampler = PowerSampler(gpus, 0.001, time.perf_counter())
    sampler.start()
    wall = time.time()
    monkeypatch.setattr(time, "time", lambda: wall - 3600)  # the wall clock steps back an hour
    for _ in range(300):  # window edges, from this thread, while the sampler thread ticks
        sampler.sample_now()
    sampler.stop()
    rows = [s for s in sampler.samples() if s.device == "gpu0"]
    assert len(rows) > 300
    assert all(a.t_s <= b.t_s and a.timestamp_ms <= b.timestamp_ms for a, b in zip(rows, rows[1:], strict=False))
    assert abs(rows[-1].timestamp_ms / 1000 - wall) < 60


def test_counter_period_is_measured() -> None:
    gpu = FakeGpu(UUIDS[0], counter=ClockedCounter(power_w=100.0, period_s=0.02))
    meter = EnergyMeter(gpus=NvmlGpus(nvml=FakeNvml([gpu])), sample_period_s=None)
    assert meter.counter_period_s() == pytest.approx(0.02, rel=0.25)
    meter.close()
    assert EnergyMeter(gpus=NvmlGpus(disabled_reason="CPU run"), sample_period_s=None).counter_period_s() is None
