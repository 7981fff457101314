"""mlflow-energy: what LLM inference costs in energy and carbon, tracked in MLflow."""

__version__ = "0.1.0"
