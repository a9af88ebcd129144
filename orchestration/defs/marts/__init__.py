"""dbt marts as assets."""
