"""Tables and figures built from results and runs: the console summary, a run's card, the power
timeline, replicates, the Pareto front and the hardware comparison. It writes files, never to
MLflow (record/ does)."""
