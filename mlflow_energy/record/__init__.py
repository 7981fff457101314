"""How a result becomes an MLflow run: its params, tags, metrics, datasets and files, and the one
module that writes to MLflow (writer.py)."""
