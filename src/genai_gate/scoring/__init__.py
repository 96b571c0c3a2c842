"""Scorers: the built-in code scorers, the LLM judges, and the registry that binds them to
the names a config uses."""
