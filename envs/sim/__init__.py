"""Physics adapters: the only modules that import a physics engine."""
