#!/usr/bin/env bash
# 2:4 sparsity against dense on the Llama-3.2-1B and Llama-3.1-8B shapes (random bf16 weights:
# real compute, no download), batch 8 and 64, 256 prompt + 256 new tokens, on one GPU with
# sparse tensor cores (A100, H100, H200). Extra arguments go to every sweep, for example
#   bash examples/gpu_sparsity.sh tracking.uri=sqlite:///gpu.db
# Then compare with another machine's runs: mlflow-energy compare-hardware (docs/how-to/compare-hardware.md).
set -euo pipefail
# Without a GPU every point of the sweeps would be refused one by one as a FAILED run: refuse once, before any.
if ! python3 -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  echo "gpu_sparsity.sh: error: no GPU is visible here; it measures 2:4 sparsity on a GPU with sparse tensor cores (A100, H100, H200)." >&2
  exit 2
fi
for model in ${MODELS:-llama-3.2-1b llama-3.1-8b}; do
  python3 -m mlflow_energy run -m "model=$model" model.dtype=bfloat16 workload=standard device=cuda quality=off \
    +compression=teacher,semi_structured_2_4 workload.batch_size=8,64 "$@"
done
