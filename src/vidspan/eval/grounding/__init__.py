"""Temporal-grounding evaluation: benchmarks, runs, official metrics, prediction files, reports."""
