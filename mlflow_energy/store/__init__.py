"""Where runs live: MLflow's names (every metric, param, tag and artifact), the search filters,
every read, and the results kept on disk while a tracking server does not answer."""
