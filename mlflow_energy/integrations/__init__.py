"""The meter inside the user's own MLflow work: ``track()``, the ``energy`` evaluator of
``mlflow.models.evaluate`` and the run-context provider."""
