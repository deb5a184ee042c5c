"""Orchestration: running a sweep's cells in chunks, here (a process pool) or on a Dask cluster."""
