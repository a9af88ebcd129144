"""Raw tables and their quality checks."""
