"""Benchmarks of Kitaru against its peers: `python -m benchmarks` (see README.md here)."""
