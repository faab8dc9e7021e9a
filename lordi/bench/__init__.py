"""Benchmarks that print JSON figures (see BENCHMARKS.md for the recorded runs)."""
