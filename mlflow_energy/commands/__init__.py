"""The console's commands, one module each; ``mlflow_energy.cli`` dispatches to them."""
