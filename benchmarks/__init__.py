"""Benchmarks of the engine against its baselines (raw RQ jobs, raw commits); they never assert."""
