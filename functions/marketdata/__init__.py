"""Prices, quotes, history, subscriptions and data quality."""
