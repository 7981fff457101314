"""The server a serving run loads: ``transformers serve`` started on 127.0.0.1 with the run's
model (stopped whatever happens), or a server the user runs, reached at ``serving.url``."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_energy.config import ConfigError, ModelConfig, RunConfig
from mlflow_energy.inference.models import load_model, load_tokenizer, resolve_model
from mlflow_energy.lifetime import die_with_parent

log = logging.getLogger("mlflow_energy.bench")

SERVER_LOG = "server.log"  # the managed server's output, beside result.json
_LAST_LINES = 8  # of the server's log, quoted when it fails


class ServerError(RuntimeError):
    """The server failed to start, died, or does not serve what was asked: one sentence, with
    the server's last log lines where the tool started it."""


def models_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/models"


def _get_json(url: str, timeout_s: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - http(s) checked by config
        return json.loads(response.read().decode())


def served_models(base_url: str, timeout_s: float = 5.0) -> list[str]:
    """The model ids ``GET {base_url}/models`` lists (none when the server answers that request
    with an error, as transformers serve 5.17 does offline); ServerError when nothing answers."""
    try:
        listing = _get_json(models_url(base_url), timeout_s)
    except urllib.error.HTTPError as exc:
        log.warning("the server at %s answered GET /models with HTTP %s; the model it serves is not checked",
                    base_url, exc.code)  # fmt: skip
        return []
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServerError(
            f"nothing answers at serving.url={base_url} ({reason}); start the server or fix the URL "
            "(the OpenAI base URL, ending in /v1)."
        ) from None
    return [str(m.get("id")) for m in listing.get("data", []) if isinstance(m, dict)]


def pick_model(base_url: str, wanted: str | None) -> str:
    """The model id requests will name: ``wanted`` when the server lists it (or lists nothing),
    the server's only model when ``wanted`` is None; ServerError otherwise."""
    listed = served_models(base_url)
    if wanted is not None and (wanted in listed or not listed):
        return wanted
    if wanted is None and len(listed) == 1:
        return listed[0]
    which = f"model {wanted!r}" if wanted else "one model"
    raise ServerError(
        f"the server at {base_url} does not serve {which}: it lists {', '.join(listed) or 'none'}; "
        "set serving.model_name to one of them."
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlflow-energy" / "served-models"


def served_model_folder(model: ModelConfig) -> str:
    """What ``transformers serve`` loads: a saved folder with weights and tokenizer, a hub id, or
    (random weights, or a folder without a tokenizer) a copy saved once in the cache, named by
    the model's config, dtype and seed."""
    source = resolve_model(model)
    folder = Path(source.location)
    if model.weights == "pretrained" and (source.kind == "hub" or source.tokenizer_location == source.location):
        return source.location
    config_text = (folder / "config.json").read_text() if source.kind != "hub" else source.location
    key = json.dumps([config_text, model.weights, model.dtype, model.seed, model.revision], sort_keys=True)
    target = _cache_root() / f"{Path(model.name).name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (target / "config.json").is_file():
        return str(target)
    log.info("saving %s (%s weights, %s) to %s for the server", model.name, model.weights, model.dtype, target)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    load_model(source, model, "cpu").model.save_pretrained(partial)
    load_tokenizer(source, model).save_pretrained(partial)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        partial.rename(target)
    except OSError:  # another run saved it meanwhile
        pass
    return str(target)


def _last_lines(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    # A traceback's caret lines (^^^^) say nothing in one line of text.
    kept = [line.strip() for line in lines if line.strip() and set(line.strip()) - set("^~ ")]
    return " | ".join(kept[-_LAST_LINES:]) or "(empty log)"


@dataclass
class ManagedServer:
    """A server process the tool starts and stops.

    Args:
        argv: the command; ``{port}`` in it is replaced by a free port on 127.0.0.1.
        log_path: where its output goes (quoted when it fails).
        description: what it is, as the run's tag shows it.
        serves: the model id it serves (what requests name).
    """

    argv: list[str]
    log_path: Path
    description: str
    serves: str
    process: subprocess.Popen[bytes] | None = None
    base_url: str = ""

    def start(self, timeout_s: float) -> None:
        """Starts it (it dies with this process) and waits until ``/health`` answers; ServerError
        with its last log lines when it exits first or does not answer in ``timeout_s``."""
        port = _free_port()
        argv = [a.replace("{port}", str(port)) for a in self.argv]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        parent = os.getpid()
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own argv
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=lambda: die_with_parent(signal.SIGTERM, parent),
            )  # fmt: skip
        log.info("started %s (pid %d) on port %d; waiting for /health", self.description, self.process.pid, port)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive("before it answered /health")
            try:
                _get_json(f"http://127.0.0.1:{port}/health", 2.0)
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.5)
        self.stop()
        raise ServerError(
            f"{self.description} did not answer /health within serving.startup_timeout_s={timeout_s:g} s; "
            f"its last log lines: {_last_lines(self.log_path)}"
        )

    def check_alive(self, when: str, wait_s: float = 0.0) -> None:
        """ServerError, with its last log lines, when the process has exited (or exits within
        ``wait_s``)."""
        assert self.process is not None, "check_alive is called after start"
        try:
            code = self.process.wait(wait_s) if wait_s > 0 else self.process.poll()
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:
            raise ServerError(
                f"{self.description} exited with code {code} {when}; its last log lines: {_last_lines(self.log_path)}"
            )

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after 15 s; safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait_s)
                return
            except subprocess.TimeoutExpired:
                continue


def transformers_serve(model: ModelConfig, device: str, continuous_batching: bool, server_args: list[str],
                       log_path: Path) -> ManagedServer:  # fmt: skip
    """``transformers serve`` pinned to the run's model, dtype and device, on a free port, with
    ``server_args`` added."""
    import transformers

    folder = served_model_folder(model)
    argv = [sys.executable, "-m", "transformers.cli.transformers", "serve", "--host", "127.0.0.1", "--port", "{port}",
            "--device", device, "--dtype", model.dtype,
            "--continuous-batching" if continuous_batching else "--no-continuous-batching", *server_args,
            folder]  # fmt: skip
    batching = "continuous batching" if continuous_batching else "no continuous batching"
    extra = f", {' '.join(server_args)}" if server_args else ""
    description = f"transformers serve {transformers.__version__} ({batching}{extra})"
    server = ManagedServer(argv, log_path, description, folder)
    if model.trust_remote_code:
        server.argv.insert(-1, "--trust-remote-code")
    return server


def check_serving(config: RunConfig) -> None:
    """ConfigError, before any run exists, when the serving run cannot start: the server's
    packages missing, or nothing (or not the model) at ``serving.url``."""
    if config.serving.url is None:
        _check_transformers_serve()
        return
    try:
        pick_model(config.serving.url, config.serving.model_name)
    except ServerError as exc:
        raise ConfigError(str(exc)) from None


def _check_transformers_serve() -> None:
    """ConfigError naming what to install when ``transformers serve`` cannot start here."""
    if _missing("transformers.cli.serve"):
        import transformers

        raise ConfigError(
            f"scenario=serving starts transformers serve, which transformers {transformers.__version__} does not "
            "have in the form the tool drives (transformers 5 or newer); upgrade transformers, or attach to a "
            "server you run with serving.url."
        )
    missing = [name for name in ("fastapi", "uvicorn", "openai") if _missing(name)]
    if missing:
        raise ConfigError(
            f"scenario=serving needs {', '.join(missing)} (transformers serve and its client); "
            'install them with pip install -e ".[serving]".'
        )


def _missing(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:  # a parent package is missing
        return True
