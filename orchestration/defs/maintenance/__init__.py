"""Weekly housekeeping of the warehouse and the Dagster instance."""
