"""transformers beyond its public API (tested with transformers 4.56 and 5.x):

- ``generate`` compiles its decoding step on accelerators only, unless
  ``CompileConfig._compile_all_devices`` (its own test switch) is set. A CPU run of
  ``backend.name=static_compile`` sets it.
- the model types it knows are listed in the source of its config mapping, each beside its
  config class (``("llama", "LlamaConfig")``, or ``"llama": "LlamaConfig"``), which can be read
  without importing it.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mlflow_energy.adapters")


def compile_on_any_device(compile_config: Any) -> None:
    """Lets ``generate`` compile on a CPU too; where this transformers lacks the switch, says so
    (the run is then measured uncompiled on the CPU)."""
    if not hasattr(type(compile_config), "_compile_all_devices"):
        log.warning("this transformers has no CompileConfig._compile_all_devices: generate will not compile on a CPU")
        return
    compile_config._compile_all_devices = True


def names_config_class(model_type: Any) -> bool:
    """Whether the source of transformers' config mapping names a config class for this
    model_type. False says nothing: ask the mapping itself."""
    if not isinstance(model_type, str):
        return False
    entry = rf"[\"']{re.escape(model_type)}[\"']\s*[:,]\s*[\"']\w+Config[\"']"
    return re.search(entry, _config_mapping_source()) is not None


@functools.cache
def _config_mapping_source() -> str:
    """The modules where transformers lists its config classes by model_type (4.x:
    configuration_auto.py; 5.x: auto_mappings.py too), found without importing transformers."""
    spec = importlib.util.find_spec("transformers")
    folders = [Path(f) / "models" / "auto" for f in (spec.submodule_search_locations or [])] if spec else []
    files = [folder / name for folder in folders for name in ("configuration_auto.py", "auto_mappings.py")]
    return "".join(f.read_text(encoding="utf-8") for f in files if f.is_file())
