"""Manipulation tasks for the Franka Panda: reach beside a person, push beside a fragile object."""
