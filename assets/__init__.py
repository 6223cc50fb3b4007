"""Model files taxbench authors (each with a SOURCE.md); loaded through taxbench.envs.core.assets."""
