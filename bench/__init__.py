"""Benchmarks for sendguard: a synthetic directory, labelled sends, quality and latency."""
