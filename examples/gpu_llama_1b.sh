#!/usr/bin/env bash
# The Llama-3.2-1B shape with random bf16 weights on the first GPU: real compute, no download.
# The same shape as the reference figures in docs/results/h100.md.
set -euo pipefail
mlflow-energy run model=llama-3.2-1b workload=standard device=cuda "$@"
