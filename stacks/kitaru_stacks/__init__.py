"""Kitaru stacks plugins."""
