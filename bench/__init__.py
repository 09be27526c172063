"""Benchmarks: every figure beside an in-run baseline, printed as a ratio.

Run all suites with ``scripts/bench.sh`` (or ``python -m bench [SUITE...]``).
Benchmarks are never timed unit tests: they report, they do not assert.
"""
