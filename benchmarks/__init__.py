"""Benchmarks, run by hand: `make bench` runs every module here; each writes benchmarks/results/."""
