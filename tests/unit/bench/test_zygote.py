"""The zygote's protocol, for real and fast: a real zygote process (bench/zygote.py's ``_serve``)
forks, or with MLFLOW_ENERGY_NO_FORK=1 spawns (``python -m mlflow_energy.bench.child``), real
benchmark children (bench/child.py's ``run_child``) and reports ``started <pid>`` /
``exited <pid> <code>``; the parent's ``Zygote`` handle and ``run_isolated`` read the replies:
exit codes, signals, timeouts, Ctrl-C, environment changes, a zygote that dies or answers
nonsense, and the error each leaves in the result.

Only the work is a stand-in: a ``sitecustomize`` on the zygote's PYTHONPATH (inherited by the
children it spawns) replaces the protocol module, as tests/e2e/faults/test_bad_inputs.py's
TIMED_OUT_CHILD does, with one that does what ``act.json`` in the output folder asks and
reports what it saw (``seen.json``), and torch with a stub; the zygote skips its preload. The
handle is given the process instead of starting ``python -m mlflow_energy.bench.zygote`` itself
(``Zygote`` has no seam for the command), so ``_ensure_started`` is left to the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from mlflow_energy.bench import isolation, zygote
from mlflow_energy.bench.child import REQUEST_FILE
from mlflow_energy.bench.interrupt import StopRequest
from mlflow_energy.bench.result import BenchResult, Status
from mlflow_energy.bench.zygote import INTERRUPTED, ORPHANED, TIMED_OUT, ChildEnd, Zygote
from mlflow_energy.config import BenchConfig, RunConfig, as_dict

from processes import REPO, command_line, wait_until

PACKAGE_ROOT = REPO
ACT, SEEN = "act.json", "seen.json"

STAND_IN = '''
"""Loaded at the start of every interpreter of the test's zygote and its spawned children."""
import json, os, signal, sys, time, types

def run_protocol(config, out_dir, save):
    act = json.loads((out_dir / "act.json").read_text())
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = f.read().split(b"\\0")
    seen = {"pid": os.getpid(), "ppid": os.getppid(), "spawned": b"mlflow_energy.bench.child" in cmdline,
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}
    (out_dir / "seen.json").write_text(json.dumps(seen))
    if act.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "save" in act:
        from mlflow_energy.bench.result import BenchResult, Status
        save(BenchResult(config, "hash", status=Status(act["save"]["status"]), phase=act["save"]["phase"]))
    if act.get("sigint") is not None:  # as the terminal's Ctrl-C reaches the parent
        os.kill(act["sigint"], signal.SIGINT)
    if act.get("kill_zygote"):
        os.kill(os.getppid(), signal.SIGKILL)
    if act.get("signal"):
        os.kill(os.getpid(), act["signal"])
    time.sleep(act.get("sleep", 0))
    sys.exit(act.get("exit", 0))

if os.environ.get("STAND_IN_STANDBY_HANGS") == "1":  # a standby child whose imports never end
    with open("/proc/self/cmdline", "rb") as f:
        if b"--standby" in f.read().split(b"\\0"):
            time.sleep(3600)

sys.modules["mlflow_energy.bench.protocol"] = types.SimpleNamespace(run_protocol=run_protocol)
cuda = types.SimpleNamespace(is_initialized=lambda: os.environ.get("STAND_IN_CUDA_INITIALIZED") == "1")
if os.environ.get("STAND_IN_REAL_TORCH") != "1":  # a standby child's real imports need the real one
    sys.modules["torch"] = types.SimpleNamespace(cuda=cuda)
'''
# The zygote's own body without its preload (imports of torch, transformers, CodeCarbon).
ZYGOTE_MAIN = ("import sys; import mlflow_energy.bench.zygote as z; z.preload = lambda: None; "
               "z._serve(int(sys.argv[1]), 0)")
# The same with standby children, which do their real imports (the stand-in keeps the real torch).
STANDBY_MAIN = ZYGOTE_MAIN.replace(", 0)", ", 1)")
STANDBY_ENV = {"STAND_IN_REAL_TORCH": "1", "CUDA_VISIBLE_DEVICES": "3"}


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stand-in")
    (folder / "sitecustomize.py").write_text(STAND_IN)
    return folder


@pytest.fixture
def start_zygote(stand_in: Path, tmp_path: Path) -> Iterator[Callable[..., Zygote]]:
    """Starts a zygote as ``Zygote`` does (own session, replies on stdout), its stderr kept in
    ``tmp_path / "zygote.err"``; closed at the end of the test."""
    started: list[Zygote] = []

    def start(env: dict[str, str] | None = None, main: str = ZYGOTE_MAIN) -> Zygote:
        handle = Zygote()
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stand_in), str(PACKAGE_ROOT)]), **(env or {})}
        with (tmp_path / "zygote.err").open("a") as stderr:
            handle._process = subprocess.Popen(
                [sys.executable, "-c", main, str(os.getpid())], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=stderr, env=environment, start_new_session=True,
            )  # fmt: skip
        handle._expect("ready")
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.close()


MODES = {"fork": {}, "spawn": {zygote.NO_FORK_ENV: "1"}}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


def benchmark(folder: Path, **act: object) -> Path:
    """An output folder as run_isolated prepares it, with what the stand-in is to do."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REQUEST_FILE).write_text(json.dumps(as_dict(RunConfig())))
    (folder / ACT).write_text(json.dumps(act))
    return folder


def seen(folder: Path) -> dict:
    return json.loads((folder / SEEN).read_text())


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def children(handle: Zygote) -> list[psutil.Process]:
    """The zygote's children still there (a child it has waited for is not)."""
    assert handle._process is not None
    return psutil.Process(handle._process.pid).children()


NO_STOP = StopRequest()  # never installed: never requested
# A timeout can come before the child's body has set itself up (a loaded machine): then the
# child has no SIGTERM handler yet and dies of the signal instead of exiting 128 + SIGTERM.
STOPPED_BY_SIGTERM = (128 + signal.SIGTERM, -signal.SIGTERM)


@pytest.fixture
def ctrl_c() -> Iterator[StopRequest]:
    """This process's Ctrl-C as a stop request, as the CLI installs it; SIGINT's handler is
    restored afterwards. The stand-in presses it (``sigint``) once it is at work."""
    stop = StopRequest()
    previous = signal.getsignal(signal.SIGINT)
    stop.install(exit_code=130)
    yield stop
    signal.signal(signal.SIGINT, previous)


def test_each_child_is_a_process_of_its_own_and_its_exit_code_comes_back(start_zygote, tmp_path: Path, mode) -> None:
    handle = start_zygote(MODES[mode])
    zygote_pid = handle._process.pid
    first, second = benchmark(tmp_path / "a", exit=3), benchmark(tmp_path / "b")
    assert handle.run(first, {}, 60, NO_STOP) == ChildEnd(3)
    assert handle.run(second, {}, 60, NO_STOP) == ChildEnd(0)
    assert seen(first)["ppid"] == seen(second)["ppid"] == zygote_pid  # both children of the one zygote
    assert len({seen(first)["pid"], seen(second)["pid"], zygote_pid}) == 3
    assert seen(first)["spawned"] is seen(second)["spawned"] is (mode == "spawn")
    notice = (tmp_path / "zygote.err").read_text()
    assert ("MLFLOW_ENERGY_NO_FORK=1 is set" in notice) is (mode == "spawn")


def test_a_zygote_whose_imports_initialised_cuda_spawns_its_children(start_zygote, tmp_path: Path) -> None:
    handle = start_zygote({"STAND_IN_CUDA_INITIALIZED": "1"})
    folder = benchmark(tmp_path / "a")
    assert handle.run(folder, {}, 60, NO_STOP) == ChildEnd(0)
    assert seen(folder)["spawned"] is True
    assert ("mlflow-energy: each benchmark starts a fresh Python process (a few seconds more each): a library "
            "initialised CUDA while being imported (torchao does).") in (tmp_path / "zygote.err").read_text()


def test_a_child_killed_by_a_signal_reports_minus_the_signal(start_zygote, tmp_path: Path, mode) -> None:
    handle = start_zygote(MODES[mode])
    assert handle.run(benchmark(tmp_path / "a", signal=signal.SIGKILL), {}, 60, NO_STOP) == ChildEnd(-signal.SIGKILL)
    assert handle.run(benchmark(tmp_path / "b", signal=signal.SIGSEGV), {}, 60, NO_STOP) == ChildEnd(-signal.SIGSEGV)


def test_a_child_past_its_timeout_is_stopped_and_the_zygote_serves_the_next(start_zygote, tmp_path: Path, mode) -> None:
    handle = start_zygote(MODES[mode])
    ended = handle.run(benchmark(tmp_path / "a", sleep=60), {}, 0.3, NO_STOP)
    assert ended.stopped == TIMED_OUT and ended.code in STOPPED_BY_SIGTERM
    assert children(handle) == []
    assert handle.run(benchmark(tmp_path / "b", exit=4), {}, 60, NO_STOP) == ChildEnd(4)


def test_ctrl_c_stops_the_running_child_which_saves_and_exits(start_zygote, tmp_path: Path, ctrl_c, mode) -> None:
    handle = start_zygote(MODES[mode])
    folder = benchmark(tmp_path / "a", sigint=os.getpid(), sleep=60)
    # SIGTERM from the parent: the child unwinds (saving what it measured) and exits 128 + SIGTERM.
    assert handle.run(folder, {}, 600, ctrl_c) == ChildEnd(128 + signal.SIGTERM, INTERRUPTED)
    assert ctrl_c.requested and gone(seen(folder)["pid"]) and children(handle) == []
    # A stop requested before a benchmark starts starts nothing.
    assert handle.run(benchmark(tmp_path / "b"), {}, 600, ctrl_c) == ChildEnd(None, INTERRUPTED)
    assert not (tmp_path / "b" / SEEN).exists()


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(start_zygote, tmp_path: Path, ctrl_c,
                                                                monkeypatch) -> None:  # fmt: skip
    monkeypatch.setattr(zygote, "STOP_GRACE_S", 0.2)
    handle = start_zygote()
    folder = benchmark(tmp_path / "a", ignore_sigterm=True, sigint=os.getpid(), sleep=60)
    assert handle.run(folder, {}, 600, ctrl_c) == ChildEnd(-signal.SIGKILL, INTERRUPTED)
    assert gone(seen(folder)["pid"]) and children(handle) == []


def test_environment_changes_reach_the_child_only(start_zygote, tmp_path: Path, mode) -> None:
    handle = start_zygote({**MODES[mode], "CUDA_VISIBLE_DEVICES": "0"})
    runs = {"set": {"CUDA_VISIBLE_DEVICES": "1"}, "unset": {"CUDA_VISIBLE_DEVICES": None}, "unchanged": {}}
    for name, env in runs.items():
        assert handle.run(benchmark(tmp_path / name), env, 60, NO_STOP) == ChildEnd(0)
    # The zygote's own value is untouched by a child's change: the last child sees it again.
    assert {name: seen(tmp_path / name)["CUDA_VISIBLE_DEVICES"] for name in runs} == {
        "set": "1", "unset": None, "unchanged": "0"}  # fmt: skip


def test_a_zygote_dying_under_its_child_ends_the_child_and_the_handle(
    start_zygote, tmp_path: Path, monkeypatch, mode
) -> None:
    """The child kills the zygote and ignores SIGTERM (the kernel's, then the parent's): the
    parent still returns only once the child is gone, and closes the dead zygote's handle."""
    monkeypatch.setattr(zygote, "STOP_GRACE_S", 0.2)
    handle = start_zygote(MODES[mode])
    folder = benchmark(tmp_path / "a", kill_zygote=True, ignore_sigterm=True, sleep=60)
    assert handle.run(folder, {}, 60, NO_STOP) == ChildEnd(None, ORPHANED)
    assert gone(seen(folder)["pid"]) and handle._process is None


# --- run_isolated: the result the parent records, whatever happened to the child ---------


@pytest.mark.parametrize(
    ("after_the_request", "why"),
    [("pass", "the benchmark zygote ended unexpectedly"),
     ("print('nonsense', flush=True)", "the benchmark zygote answered 'nonsense' instead of 'started'")],
)
def test_a_zygote_that_cannot_start_the_child_fails_the_run_in_one_sentence(
    start_zygote, tmp_path: Path, monkeypatch, after_the_request: str, why: str
) -> None:
    # It reads up to the first child's request (past the standbys asked for the run's processes).
    broken = ("import sys; print('ready', flush=True); next(r for r in sys.stdin if 'out_dir' in r); "
              f"{after_the_request}")
    handle = start_zygote(main=broken)
    monkeypatch.setattr(isolation, "_ZYGOTE", handle)
    result = isolation.run_isolated(RunConfig(), benchmark(tmp_path / "a"), NO_STOP)
    # The default run has 3 benchmark processes: the first one failed, and the run says which.
    assert (result.status, result.error) == (Status.FAILED,
                                             f"benchmark process 1 of 3: the benchmark process could not be started "
                                             f"({why})")  # fmt: skip
    assert handle._process is None  # closed: the next run starts a new zygote


@pytest.fixture
def isolated(start_zygote, monkeypatch) -> Callable[..., BenchResult]:
    """run_isolated through a stand-in zygote started with CUDA_VISIBLE_DEVICES=0 (the GPU a
    previous job had): ``isolated(folder, timeout_s=60, **act)``."""
    monkeypatch.setattr(isolation, "_ZYGOTE", start_zygote({"CUDA_VISIBLE_DEVICES": "0"}))

    def run(folder: Path, timeout_s: float = 60, **act: object) -> BenchResult:
        config = replace(RunConfig(), bench=BenchConfig(timeout_s=timeout_s, processes=1))
        benchmark(folder, **act)
        return isolation.run_isolated(config, folder, NO_STOP)

    return run


def saved(phase: str, status: str = "running") -> dict:
    return {"save": {"phase": phase, "status": status}}


def test_a_child_that_exits_is_recorded_failed_with_its_code_and_phase(isolated, tmp_path: Path) -> None:
    result = isolated(tmp_path / "a", exit=3, **saved("load"))
    assert (result.status, result.error) == (Status.FAILED, "the benchmark process exited with code 3 during load")
    assert BenchResult.read(tmp_path / "a") == result  # what the parent logs is what it wrote


def test_a_child_killed_by_sigkill_names_the_out_of_memory_killer(isolated, tmp_path: Path) -> None:
    result = isolated(tmp_path / "a", signal=signal.SIGKILL, **saved("generate"))
    assert result.error == ("the benchmark process was killed by SIGKILL (the kernel's out-of-memory killer sends "
                            "this) during generate")  # fmt: skip


def test_a_child_that_dies_before_saving_leaves_a_failed_result(isolated, tmp_path: Path) -> None:
    result = isolated(tmp_path / "a", exit=1)
    assert (result.status, result.phase, result.error) == (Status.FAILED, "starting",
                                                          "the benchmark process exited with code 1 during starting")
    assert result.config_hash and result.point_hash and result.assessment is not None


def test_a_timed_out_child_is_recorded_with_the_setting_that_stopped_it(isolated, tmp_path: Path) -> None:
    result = isolated(tmp_path / "a", timeout_s=0.3, sleep=60, **saved("repetition 2"))
    # The phase is the last one saved: "repetition 2", or "starting" where the timeout came first.
    assert result.phase in ("repetition 2", "starting")
    assert result.status == Status.FAILED
    assert result.error == f"timed out after bench.timeout_s=0.3 s during {result.phase}"


def test_an_orphaned_child_is_recorded_as_stopped_with_its_zygote(isolated, tmp_path: Path) -> None:
    result = isolated(tmp_path / "a", kill_zygote=True, sleep=60, **saved("warm-up"))
    assert result.error == "the benchmark's zygote process died during warm-up, so the benchmark was stopped"
    assert gone(seen(tmp_path / "a")["pid"])


def test_a_finished_result_stays_finished_whatever_happens_after(isolated, tmp_path: Path) -> None:
    result = isolated(tmp_path / "a", signal=signal.SIGKILL, **saved("done", status="finished"))
    assert (result.status, result.error) == (Status.FINISHED, None)


def test_the_child_gets_the_gpus_of_this_call_not_those_the_zygote_started_with(
    isolated, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert isolated(tmp_path / "leased", **saved("done", status="finished")).status == Status.FINISHED
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert isolated(tmp_path / "none", **saved("done", status="finished")).status == Status.FINISHED
    assert seen(tmp_path / "leased")["CUDA_VISIBLE_DEVICES"] == "1"
    assert seen(tmp_path / "none")["CUDA_VISIBLE_DEVICES"] is None


def test_a_sigterm_that_lands_in_a_garbage_collector_callback_still_ends_the_child_quietly() -> None:
    """Python cannot raise from a ``__del__`` or weakref callback: the child's SIGTERM exit landing
    in one used to print "Exception ignored ... Traceback" and be lost. It is sent again instead."""
    script = """
import os, signal, sys, time
from mlflow_energy.bench.child import exit_on_sigterm
exit_on_sigterm()
class Collected:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):  # the signal's handler runs here, inside __del__
            pass
try:
    Collected()
    time.sleep(30)
except SystemExit as stopped:
    print("exited", stopped.code)
    sys.exit(0)
print("never stopped")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"exited {128 + signal.SIGTERM}\n"), done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


@pytest.mark.parametrize(("signum", "cause", "said"), [
    (signal.SIGINT, "Ctrl-C", b"(Ctrl-C again to exit at once).\n"),
    (signal.SIGTERM, "SIGTERM", b"(a second SIGTERM exits at once).\n"),
])  # fmt: skip
def test_ctrl_c_and_sigterm_are_the_same_stop_request(signum: int, cause: str, said: bytes, capfd) -> None:
    """The command takes SIGTERM (`timeout`, `kill`) as it takes Ctrl-C: a stop request, its
    cause named in the stopped run's error."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = StopRequest()
    try:
        stop.install(exit_code=130, sigterm_too=True)
        os.kill(os.getpid(), signum)
        fileno = stop.fileno()
        assert fileno is not None and os.read(fileno, 1) == b"!"
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert stop.requested and stop.cause == cause
    assert capfd.readouterr().err.encode().endswith(said)
    error = isolation._stop_cause(INTERRUPTED, RunConfig(), "repetition 3", stop)
    assert error == f"interrupted ({cause}) during repetition 3"


def test_a_sweep_job_leaves_sigterm_to_its_engine() -> None:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        StopRequest().install(exit_code=130)
        assert signal.getsignal(signal.SIGTERM) == previous[0]
    finally:
        signal.signal(signal.SIGINT, previous[1])


def standbys_of(handle: Zygote, count: int = 1) -> list[psutil.Process]:
    """The zygote's standby children, once they have replaced their copies of the zygote (a busy
    machine may show a forked copy's command line for a moment)."""

    def standbys() -> list[psutil.Process]:
        return [p for p in children(handle) if zygote.STANDBY_FLAG in command_line(p)]

    wait_until(lambda: len(standbys()) == count, f"{count} standby children")
    return standbys()


@pytest.mark.parametrize("first_fresh", [True, False])  # False: a single run's one process, forked elsewhere
def test_a_standby_child_takes_the_first_request_and_the_next_is_spawned(start_zygote, tmp_path: Path,
                                                                         first_fresh: bool) -> None:  # fmt: skip
    handle = start_zygote(STANDBY_ENV, main=STANDBY_MAIN)
    (standby,) = standbys_of(handle)
    first, second = benchmark(tmp_path / "a", exit=3), benchmark(tmp_path / "b")
    assert handle.run(first, {"CUDA_VISIBLE_DEVICES": "3"}, 120, NO_STOP, fresh=first_fresh) == ChildEnd(3)
    assert seen(first)["pid"] == standby.pid and seen(first)["CUDA_VISIBLE_DEVICES"] == "3"
    assert handle.run(second, {"CUDA_VISIBLE_DEVICES": "3"}, 120, NO_STOP, fresh=True) == ChildEnd(0)
    assert seen(second)["pid"] != standby.pid and seen(second)["spawned"] is True


def test_a_run_of_fresh_processes_gets_a_standby_for_each_and_they_wait_until_all_are_ready(
        start_zygote, tmp_path: Path) -> None:  # fmt: skip
    # No benchmark may measure while another standby still imports: the first starts after both.
    # Asked of a running zygote, as at a sweep's point.
    handle = start_zygote(STANDBY_ENV, main=ZYGOTE_MAIN)
    handle.keep_standbys(2, {"CUDA_VISIBLE_DEVICES": "3"})
    standbys = standbys_of(handle, count=2)
    folders = [benchmark(tmp_path / name) for name in "abc"]
    for folder in folders:
        assert handle.run(folder, {"CUDA_VISIBLE_DEVICES": "3"}, 120, NO_STOP, fresh=True) == ChildEnd(0)
    assert [seen(f)["pid"] for f in folders[:2]] == [p.pid for p in standbys]
    assert seen(folders[2])["spawned"] is True and seen(folders[2])["pid"] not in {p.pid for p in standbys}


def test_the_zygote_waits_for_the_slowest_standby_and_for_one_that_died() -> None:
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
    died = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    pipes = [os.pipe(), os.pipe()]
    standbys = [zygote._Standby(process, ready, {}) for process, (ready, _) in zip((slow, died), pipes, strict=True)]
    os.close(pipes[1][1])  # the one that died never said it was ready
    started = time.monotonic()
    threading.Timer(0.5, os.close, (pipes[0][1],)).start()  # the slow one says so after its imports
    zygote._wait_ready(standbys)
    assert time.monotonic() - started >= 0.5
    assert [standby.ready for standby in standbys] == [None, None]
    for standby in standbys:
        standby.end()


def test_standbys_asked_of_a_running_zygote_start_in_the_environment_asked(start_zygote) -> None:
    # A sweep's next point: its standbys start between points, for the GPUs the point will have;
    # those started for other GPUs end, without waiting for their imports.
    handle = start_zygote({**STANDBY_ENV, "STAND_IN_STANDBY_HANGS": "1"}, main=ZYGOTE_MAIN)
    handle.keep_standbys(1, {"CUDA_VISIBLE_DEVICES": "3"})
    (other_gpus,) = standbys_of(handle)
    handle.keep_standbys(1, {"CUDA_VISIBLE_DEVICES": "1"})
    wait_until(lambda: gone(other_gpus.pid), "the standby for other GPUs to end")
    (standby,) = standbys_of(handle)
    assert standby.environ()["CUDA_VISIBLE_DEVICES"] == "1"


def test_a_command_that_ends_without_a_request_does_not_wait_for_the_standbys_imports(start_zygote) -> None:
    # A command that refused its configuration closes the zygote's input at once: the zygote ends
    # its standbys and exits by itself, though their imports never finish.
    handle = start_zygote({**STANDBY_ENV, "STAND_IN_STANDBY_HANGS": "1"}, main=STANDBY_MAIN)
    (standby,) = standbys_of(handle)
    process = handle._process
    assert process is not None
    handle.close()  # the zygote gets STOP_GRACE_S to end by itself before its group is killed
    assert process.returncode == 0 and gone(standby.pid)


def test_a_standby_child_is_not_given_another_environment(start_zygote, tmp_path: Path) -> None:
    # Its imports may have read CUDA_VISIBLE_DEVICES (a library that initialises CUDA): a request
    # for other GPUs gets a new interpreter, and the standby ends.
    handle = start_zygote(STANDBY_ENV, main=STANDBY_MAIN)
    (standby,) = standbys_of(handle)
    folder = benchmark(tmp_path / "a")
    assert handle.run(folder, {"CUDA_VISIBLE_DEVICES": "1"}, 120, NO_STOP, fresh=True) == ChildEnd(0)
    assert seen(folder)["pid"] != standby.pid and seen(folder)["CUDA_VISIBLE_DEVICES"] == "1"
    assert gone(standby.pid)


def test_compilations_are_cached_where_the_users_caches_live(tmp_path: Path) -> None:
    assert zygote.compile_cache_dir({"HOME": "/home/u"}) == "/home/u/.cache/mlflow-energy/torchinductor"
    assert zygote.compile_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "mlflow-energy" /
                                                                                "torchinductor")  # fmt: skip
    assert zygote.compile_cache_dir({zygote.COMPILE_CACHE_ENV: "/mine", "XDG_CACHE_HOME": "/x"}) == "/mine"
