"""Dagster definitions by domain, loaded by ``orchestration/definitions.py``."""
