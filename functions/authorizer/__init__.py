"""Lambda authorizers. One core (policy and context), thin entry points per credential kind."""
