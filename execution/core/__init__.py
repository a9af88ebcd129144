"""The execution core: the rules a decision, a booking and a replay run through, with no I/O.

Decisions, sizing, the risk gate and its limits, the order state machine, positions and
their booking, valuation and the day's loss screen, the stops, the operator commands, the
paper venue, the in-memory journal, reconciliation's comparison and the replay loop. The
live process and every backtest call the same code; the shell around it (``execution``'s
other modules: the Kafka loops, the journal file, the MT5 broker, the CLI, the loaders)
does the I/O and passes what it read in. An import-linter contract in ``pyproject.toml``
keeps the shell's I/O out of this package.
"""
