"""Kitaru infra plugins."""
