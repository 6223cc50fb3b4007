"""Robots: model, action mapping, observation and posture checks."""
