"""Webhook rules with no AWS in them: signing, delivery policy, payloads."""
