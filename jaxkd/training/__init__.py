"""Training machinery behind ``python -m jaxkd.train``: model files and
checkpoints, compiled steps, teacher targets, the epoch loop."""
