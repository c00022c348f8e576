"""Search backends: Optuna (the default) and KerasTuner, over the same search spaces."""
