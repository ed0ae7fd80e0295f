"""The custody ledger: an append-only, hash-chained, signed record of every event that
touches a capture (entry.py: the entries; ledger.py: where they are stored; chain.py:
checking them; log.py: recording events)."""
