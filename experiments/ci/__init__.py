"""CI tools: ``taxbench gate`` (safety regression test of a policy) and ``taxbench check`` (info contract)."""
