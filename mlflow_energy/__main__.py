from mlflow_energy.cli import console

if __name__ == "__main__":
    console()
