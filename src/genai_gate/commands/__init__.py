"""The use cases: each takes a loaded config and returns a typed report."""
