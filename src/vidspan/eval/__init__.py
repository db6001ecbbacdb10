"""Evaluation: temporal-grounding benchmarks with the official metrics, runs, scoring and reports."""
