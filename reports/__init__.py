"""Compliance reports: seven daily reports as CSV and HTML, manifests chained day to day, verification."""
