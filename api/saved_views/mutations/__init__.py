"""Mutations of saved views: one file per mutation, typed results."""
