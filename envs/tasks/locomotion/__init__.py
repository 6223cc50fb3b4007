"""Locomotion tasks: velocity-limited running and hazard-zone navigation."""
