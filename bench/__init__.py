"""Benchmarks of the pipeline and the peers it is compared against."""
