"""Tasks: what the robot is asked to do and how it is paid."""
