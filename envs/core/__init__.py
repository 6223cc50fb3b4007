"""Core of every taxbench env: the sim surface, robot/task/cost protocols, the env and its wrappers."""
