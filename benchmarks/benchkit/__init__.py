"""Helpers of the benchmark suite (``benchmarks/run.py``, ``benchmarks/soak.py``).

Not part of the gateway: nothing under ``backend`` imports this package.
"""
