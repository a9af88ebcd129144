"""Grafana dashboards generated as code."""
