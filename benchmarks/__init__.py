"""Runnable benchmarks: ``python3 -m benchmarks`` from the repository root."""
