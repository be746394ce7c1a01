"""Kitaru builders plugins."""
