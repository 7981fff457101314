"""transformers beyond its public API (tested with transformers 4.56 and 5.x): ``generate`` compiles
its decoding step on accelerators only, unless ``CompileConfig._compile_all_devices`` (its own
test switch) is set. A CPU run of ``backend.name=static_compile`` sets it."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("mlflow_energy.adapters")


def compile_on_any_device(compile_config: Any) -> None:
    """Lets ``generate`` compile on a CPU too; where this transformers lacks the switch, says so
    (the run is then measured uncompiled on the CPU)."""
    if not hasattr(type(compile_config), "_compile_all_devices"):
        log.warning("this transformers has no CompileConfig._compile_all_devices: generate will not compile on a CPU")
        return
    compile_config._compile_all_devices = True
