"""The query path, whatever the transport: a plan, its run on the chdb engine, its memory and CPU, the access log."""
