"""Benchmarks behind ``taxbench bench``: env vs raw physics, vector env, training throughput, rendering."""
