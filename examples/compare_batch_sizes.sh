#!/usr/bin/env bash
# Energy per token falls as the batch grows: three runs into one experiment, then a ranking.
# The runs go to mlflow.db in the working directory; extra arguments are overrides for every
# run, for example a shorter measurement: bash examples/compare_batch_sizes.sh bench.max_duration_s=1 quality=off
set -euo pipefail
for batch in 1 4 16; do
  mlflow-energy run bench=quick workload.batch_size="$batch" \
    tracking.experiment=batch-example tracking.run_name="tiny-bs$batch" "$@"
done
python "$(dirname "$0")/best_runs.py" --experiment batch-example
echo "Compare them in the UI: mlflow ui --backend-store-uri sqlite:///mlflow.db"
