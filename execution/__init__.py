"""The isolated execution process: risk-checked, idempotent orders."""
