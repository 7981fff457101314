"""A Hydra multirun as one MLflow parent run: the jobs and their replicates, the sweep's state on
disk, the cluster launchers, and the report and UI comparison it ends with."""
