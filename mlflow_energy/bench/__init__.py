"""The benchmark protocol (the config's ``bench`` section): load, idle baseline, identical
warm-up, measured windows, statistics, and the benchmark processes that run it in isolation.
The scripts that measure the tool itself are the repository's ``benchmarks/``."""
