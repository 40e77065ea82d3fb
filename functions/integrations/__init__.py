"""Integration registry, connectors, banking, payments and syncs."""
