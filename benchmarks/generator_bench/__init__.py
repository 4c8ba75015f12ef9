"""Helpers of ``benchmarks/generator_tables.py``: the paper's figures and the table printer."""
