"""Dagster definitions: training, dbt, quality checks and compliance reports."""
