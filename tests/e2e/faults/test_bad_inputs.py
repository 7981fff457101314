"""Bad inputs and unreachable stores are refused before any run exists, with one sentence that
names the key and the fix; sentences stay on one line whatever the terminal width; credentials
in a tracking URI are never shown; a timed-out benchmark ends quietly with what it measured."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_energy.commands.checks import check_run
from mlflow_energy.commands.exits import validate_output_folder
from mlflow_energy.config import ConfigError, RunConfig, as_dict
from mlflow_energy.inference.files import read_text_file
from mlflow_energy.inference.models import SHIPPED_DIR, resolve_model, validate_workload_fits
from mlflow_energy.store.uris import redact_uri

from processes import QUICK_NO_QUALITY, run_cli

TINY_CONFIG = json.loads((SHIPPED_DIR / "tiny" / "config.json").read_text())


def refusal(config: RunConfig) -> str:
    """The one-line sentence the checks before a run refuse ``config`` with."""
    with pytest.raises(ConfigError) as error:
        check_run(config)
    message = str(error.value)
    assert "\n" not in message
    return message


def with_prompts(path: Path) -> RunConfig:
    config = RunConfig()
    config.workload.prompts = str(path)
    return config


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "holds no prompt"),
        (b"\n  \n", "holds no prompt"),
        (b'{"text": "caf\xe9"}\n', "is not UTF-8 text (byte 13 cannot be decoded); save it as UTF-8"),
        (b'{"text": "fine"}\nnot json\n', 'line 2 of'),
        (b'["a list"]\n', 'line 1 of'),
        (b'"a string"\n', 'is not a JSON object with a "text" field'),
        (b'{"prompt": "wrong field"}\n', 'is not a JSON object with a "text" field'),
        (b'{"text": ""}\n', 'has a "text" that is empty or not a string'),
        (b'{"text": "  "}\n', 'has a "text" that is empty or not a string'),
        (b'{"text": 7}\n', 'has a "text" that is empty or not a string'),
    ],
)
def test_bad_prompt_files_are_refused(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(content)
    message = refusal(with_prompts(path))
    assert message.startswith("workload.prompts") and fragment in message


def test_prompt_folder_or_missing_file_is_refused(tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "missing.jsonl"):
        assert "is neither 'synthetic', 'shipped' nor an existing JSONL file" in refusal(with_prompts(path))


def test_good_prompt_file_passes_even_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "Once upon a time"}\n\n{"text": "The dog said,"}\n')
    check_run(with_prompts(path))


def test_a_file_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    # A folder opened as a file: an OSError whatever the user's rights (root reads a chmod 000 file).
    with pytest.raises(ConfigError, match=r"^workload.prompts: .* cannot be read \(Is a directory\); make it readable"):
        read_text_file(tmp_path, "workload.prompts")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty; give it held-out text or use quality.dataset=shipped"),
        (b" \n\t\n", "is empty"),
        (b"Once upon a time \xff\xfe", "is not UTF-8 text"),
    ],
)
def test_bad_quality_text_is_refused(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "heldout.txt"
    path.write_bytes(content)
    config = RunConfig()
    config.quality.dataset = str(path)
    message = refusal(config)
    assert message.startswith("quality.dataset") and fragment in message


def model_folder(tmp_path: Path, config: dict | str | None = None, weights: tuple[str, ...] = ()) -> RunConfig:
    """A model folder holding ``config`` as config.json (a string: written as is) and empty weight
    files: nothing here ever loads weights."""
    folder = tmp_path / "model"
    folder.mkdir(parents=True)
    if config is not None:
        (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    for name in weights:
        (folder / name).write_bytes(b"")
    run = RunConfig()
    run.model.name = str(folder)
    return run


@pytest.mark.parametrize(
    ("config", "weights", "fragment"),
    [
        (None, (), "is a folder without a config.json"),
        ("{not json", (), "config.json is not valid JSON (Expecting property name"),
        ("[1, 2]", (), "config.json holds no JSON object"),
        (TINY_CONFIG, (), "has no weights in"),
        (TINY_CONFIG, ("pytorch_model.bin",), "has only .bin/.pt weights in"),
        (TINY_CONFIG, ("model.pt",), "which model.use_safetensors=true refuses"),
        ({**TINY_CONFIG, "model_type": "no-such-type"}, ("model.safetensors",),
         "model_type='no-such-type' in its config.json, which transformers"),
        ({**TINY_CONFIG, "model_type": "no-such-type", "auto_map": {"AutoModelForCausalLM": "modeling_x.X"}},
         ("model.safetensors",), "which model.trust_remote_code=false does not run; set model.trust_remote_code=true"),
    ],
)
def test_bad_model_folders_are_refused(tmp_path: Path, config: dict | str | None, weights: tuple[str, ...],
                                       fragment: str) -> None:  # fmt: skip
    message = refusal(model_folder(tmp_path, config, weights))
    assert message.startswith("model.name=") and fragment in message


def test_model_folders_that_will_load_pass(tmp_path: Path) -> None:
    pickled = model_folder(tmp_path / "a", TINY_CONFIG, ("pytorch_model.bin",))
    pickled.model.use_safetensors = False
    # transformers builds a model_type it knows with its own code and ignores the auto_map.
    known = model_folder(tmp_path / "b", {**TINY_CONFIG, "auto_map": {"AutoModelForCausalLM": "m.X"}},
                         ("x.safetensors",))  # fmt: skip
    custom = model_folder(tmp_path / "c", {**TINY_CONFIG, "model_type": "mine", "auto_map": {"AutoConfig": "m.C"}},
                          ("model.safetensors",))  # fmt: skip
    custom.model.trust_remote_code = True
    for config in (pickled, known, custom):
        validate_workload_fits(resolve_model(config.model), config)


@pytest.mark.parametrize(
    ("model", "prompt_tokens", "new_tokens", "fits"),
    [
        ("tiny-stories", 224, 32, True),  # 256 positions
        ("tiny-stories", 225, 32, False),
        ("gpt2", 1000, 25, False),  # GPT-2 names its 1024 positions n_positions
    ],
)
def test_prompt_and_output_must_fit_the_model_positions(model: str, prompt_tokens: int, new_tokens: int,
                                                        fits: bool) -> None:  # fmt: skip
    config = RunConfig()
    config.model.name, config.model.weights = model, "random"
    config.workload.prompt_tokens, config.workload.new_tokens = prompt_tokens, new_tokens
    if fits:
        validate_workload_fits(resolve_model(config.model), config)
    else:
        assert "positions of model.name=" in refusal(config)


def test_output_folder_must_be_writable(tmp_path: Path) -> None:
    validate_output_folder(tmp_path / "new" / "run", "hydra.run.dir")
    assert list((tmp_path / "new" / "run").iterdir()) == []  # the write check leaves nothing behind
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ConfigError, match=r"^hydra.run.dir='.*a_file/run' cannot be written \(Not a directory\); "
                                          "point hydra.run.dir at a writable folder with free space.$"):  # fmt: skip
        validate_output_folder(tmp_path / "a_file" / "run", "hydra.run.dir")


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("http://user:secret@host:5000", "http://***@host:5000"),
        ("https://token@host/mlflow", "https://***@host/mlflow"),
        ("postgresql://u:p@h/db", "postgresql://***@h/db"),
        ("mysql://u:p@ss@h:3306/db", "mysql://***@h:3306/db"),  # an unescaped @ in the password
        ("postgresql://h/db?user=u&password=p&ssl=on", "postgresql://h/db?user=u&password=***&ssl=on"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("/data/mlruns", "/data/mlruns"),
    ],
)
def test_credentials_in_tracking_uris_are_never_shown(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


TIMED_OUT_CHILD = """
import os, signal, sys, time, types
from pathlib import Path
from mlflow_energy.bench.result import BenchResult, Status

def run_protocol(config, out_dir, save):  # stands in for the protocol: the parent's timeout arrives mid-work
    result = BenchResult(config, "hash", status=Status.FAILED, phase="generate")
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
    finally:
        save(result)

sys.modules["mlflow_energy.bench.protocol"] = types.SimpleNamespace(run_protocol=run_protocol)
from mlflow_energy.bench.child import run_child
sys.exit(run_child(Path(sys.argv[1])))
"""


def test_a_timed_out_benchmark_ends_quietly_and_keeps_its_result(tmp_path: Path) -> None:
    (tmp_path / "bench_config.json").write_text(json.dumps(as_dict(RunConfig())))
    proc = subprocess.run([sys.executable, "-c", TIMED_OUT_CHILD, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 143 and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads((tmp_path / "result.json").read_text())["phase"] == "generate"


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one line of stderr that says what went wrong; no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("mlflow-energy: error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.mark.e2e
def test_a_bad_prompt_file_fails_before_any_run(tmp_path: Path) -> None:
    (tmp_path / "prompts.jsonl").write_text('{"text": "fine"}\n{"txt": "typo"}\n')
    proc = run_cli(tmp_path, "run", "workload.prompts=prompts.jsonl", timeout=120)
    assert proc.returncode == 2
    assert 'line 2 of prompts.jsonl is not a JSON object with a "text" field' in error_line(proc)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("mode", [["hydra.run.dir=a_file/out"], ["-m", "hydra.sweep.dir=a_file/sweep"]])
def test_an_output_folder_that_cannot_be_written_fails_before_any_run(tmp_path: Path, mode: list[str]) -> None:
    (tmp_path / "a_file").write_text("")
    proc = run_cli(tmp_path, "run", *mode, timeout=120)
    assert proc.returncode == 2
    assert "cannot be written (Not a directory); point hydra." in error_line(proc)
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.e2e
def test_report_against_a_dead_server_fails_at_once(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "report", "--experiment", "x", "--tracking-uri", "http://127.0.0.1:9", timeout=60)
    assert proc.returncode == 3
    assert "does not answer" in error_line(proc)


@pytest.mark.e2e
@pytest.mark.usefixtures("tracking_uri")
def test_sentences_stay_on_one_line_in_a_narrow_terminal(tmp_path: Path) -> None:
    # TTY_COMPATIBLE=1: Rich takes the output for a terminal of COLUMNS=40, as an interactive shell would be.
    proc = run_cli(tmp_path, "run", *QUICK_NO_QUALITY, "workload.batch_size=1", "workload.new_tokens=8", timeout=300,
                   env_extra={"COLUMNS": "40", "TTY_COMPATIBLE": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)  # Rich's colours for a terminal
    assert re.search(r"^Headline: energy per token \S+ J, .+, (measured|ESTIMATE) \(.+\)$", out, re.MULTILINE), out
    assert re.search(r"^Stored in sqlite:///mlflow\.db, experiment 'mlflow-energy', run [0-9a-f]{32} \(FINISHED\)$",
                     out, re.MULTILINE), out  # fmt: skip
