"""Kitaru orchestrators plugins."""
