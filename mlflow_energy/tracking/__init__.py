"""Where results go: the MLflow schema (names.py) and the logging of a BenchResult."""
