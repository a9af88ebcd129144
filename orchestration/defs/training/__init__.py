"""Training, promotion, and when to retrain."""
