"""The drivers: the only code that does I/O (HTTP, retries, cache files and locks, the loopback listener)."""
