"""Helpers for vidspan's own tests and benchmarks: tiny offline models, generated clips, CPU shims.

Nothing here is imported by the library itself.
"""
