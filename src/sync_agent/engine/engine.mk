# src/sync_agent/engine: the sans-I/O sync engine.
