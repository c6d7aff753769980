"""Saved views: named filters of the `customers` query, shared by name."""
