"""Cost terms (one physical quantity each, in SI units) and the table of default thresholds."""
