"""Tick ingestion: MT5, replay files and a market simulator onto the ``ticks`` topic.

See ``streams/ingest/README.md``. Pure logic lives in ``logic.py``, ``columns.py`` and
``simulation.py``; I/O in ``adapters/``; ``runner.py`` drives one source into Kafka.
"""
