"""Webhook endpoints, delivery worker and replay."""
