"""Great Expectations checks over the warehouse."""
