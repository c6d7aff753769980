"""Benchmarks: `python -m bench --help`. Ratios are measured side by side in one run."""
