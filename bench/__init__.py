"""Benchmarks (scripts, not tests). See bench/README.md for how to run and read them."""
