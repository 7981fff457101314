"""The registered model: an MLflow pyfunc that generates text (MLflow "models from code").

This file is copied into every registered model and loaded on its own: it imports torch,
transformers and mlflow, plus ``quantization.py`` and ``pruning.py`` (shipped beside it as code
paths), never the rest of mlflow-energy, so a deployment needs no mlflow-energy install. The
model config says where the weights are (the ``model`` artifact, or a hub id and revision in
reference mode) and how the measured run ran them (dtype, pruning, quantization, attention):
the saved weights are pruned and quantized again when the model loads, as the run did.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel


class TextGenerator(PythonModel):
    """``predict(["Once upon"])`` -> one continuation per prompt (greedy, stops at EOS)."""

    def load_context(self, context: Any) -> None:
        import torch
        from pruning import applies, prune
        from quantization import quantize
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        config = context.model_config
        location = context.artifacts.get("model") or config["hub_id"]
        revision = None if context.artifacts.get("model") else config.get("revision")
        on_gpu = torch.cuda.is_available() and config["quantization"] != "dynamic_int8"
        self.device = "cuda:0" if on_gpu else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(location, revision=revision)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # PreTrainedModel.to is decorated with functools.wraps, which typeshed types as a plain
        # callable that is not bound to the instance: mypy takes the device for ``self``.
        model = AutoModelForCausalLM.from_pretrained(
            location, revision=revision, dtype=getattr(torch, config["dtype"]),
            attn_implementation=config["attn_implementation"], use_safetensors=True,
        ).to(self.device)  # type: ignore[arg-type]  # fmt: skip
        pruning = config.get("pruning") or {"method": "none", "drop_layers": 0}
        if applies(pruning["method"], pruning["drop_layers"]):
            prune(model, pruning["method"], pruning["sparsity"], pruning["drop_layers"])
        self.model = quantize(model.eval(), config["quantization"])
        self.max_new_tokens = int(config.get("max_new_tokens", 32))

    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None) -> list[str]:
        import torch

        prompts = [model_input] if isinstance(model_input, str) else list(model_input)
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        new_tokens = int((params or {}).get("max_new_tokens", self.max_new_tokens))
        with torch.inference_mode():
            # ids and mask only: some tokenizers add token_type_ids, which generate refuses
            output = self.model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                         max_new_tokens=new_tokens, do_sample=False,
                                         pad_token_id=self.tokenizer.pad_token_id)  # fmt: skip
        return self.tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)


mlflow.models.set_model(TextGenerator())
