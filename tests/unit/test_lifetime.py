"""How the tool's processes end: as a normal exit would, less the interpreter's teardown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROGRAM = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from mlflow_energy.lifetime import exit_without_teardown
out = open(sys.argv[1], "w")
pool = ThreadPoolExecutor(1)  # its idle worker ends only when the exit tells it to (joblib's do too)
pool.submit(lambda: None).result()
atexit.register(lambda: (out.write("exit handler ran\\n"), out.close()))
threading.Thread(target=lambda: (time.sleep(0.2), out.write("thread finished\\n"))).start()
print("buffered output", end="")
exit_without_teardown(eval(sys.argv[2]))
"""


@pytest.mark.parametrize(("code", "status", "stderr"), [("None", 0, ""), ("3", 3, ""), ("'it broke'", 1, "it broke\n")])
def test_an_exit_without_teardown_keeps_what_a_normal_exit_does(tmp_path: Path, code: str, status: int,
                                                                stderr: str) -> None:  # fmt: skip
    written = tmp_path / "written.txt"
    proc = subprocess.run([sys.executable, "-c", PROGRAM, str(written), code], capture_output=True, text=True,
                          timeout=120)  # a hang (an executor's worker waited for before it was told to end) fails
    assert (proc.returncode, proc.stdout, proc.stderr) == (status, "buffered output", stderr)
    # The thread is waited for, then the exit handlers run, as at a normal exit.
    assert written.read_text() == "thread finished\nexit handler ran\n"
