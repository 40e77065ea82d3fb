"""Shared code shipped to every function as a Lambda layer: errors, settings, AWS clients, HTTP glue."""
