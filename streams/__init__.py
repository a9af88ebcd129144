"""Bytewax dataflows: ticks to bars, features, predictions and signals."""
