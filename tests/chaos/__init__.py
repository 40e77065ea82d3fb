"""Chaos tests: the product through the local runtime while its processes are killed."""
