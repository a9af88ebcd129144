"""I/O adapters of ingest: tick files, the simulator's pacing, an MT5 terminal, Kafka."""
