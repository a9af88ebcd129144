"""The daily compliance reports (reports/): one asset per report, daily partitions, 00:30 UTC for the previous day."""
