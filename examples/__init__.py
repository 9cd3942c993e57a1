"""Runnable examples: ``python -m examples.fireflies``, ``python -m examples.agents_bench``."""
