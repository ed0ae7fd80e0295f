"""Scheduled capture jobs: job files, one-shot runs with a lock in the store, a scheduler."""
