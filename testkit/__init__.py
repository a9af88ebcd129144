"""Test doubles and generated data for tests, benchmarks and demos.

Fakes of what cannot run here (the MT5 terminal) and synthetic trading days.
"""
