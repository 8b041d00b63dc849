"""The workflow layer seen from Python: dvc.yaml generation, engine lock, job resources."""
