"""The benchmarks, each run as ``python -m bench.<name>``; bench/README.md holds the figures and the targets."""
