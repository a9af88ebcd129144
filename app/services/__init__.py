"""Embedded services (Kafka, the warehouse) and the supervisor that runs them."""
