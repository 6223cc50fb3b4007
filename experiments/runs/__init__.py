"""Running: run config, run folders, training, checkpoints, the process pool, pairs, sweeps, evaluation."""
