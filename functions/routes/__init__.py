"""Gateway admin (health, identity; routes, clients, keys and analytics come with later issues)."""
