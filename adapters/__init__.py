"""I/O and process plumbing several components share, above the kernel of definitions.

The MetaTrader 5 terminal adapter (ingest and execution), the batched warehouse writer
(the dataflow's and the audit trail's loaders), and what long-running processes do about
garbage-collection pauses, their health and a parent that died.
"""
