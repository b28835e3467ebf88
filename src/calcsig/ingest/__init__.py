"""Ingest adapters: each turns one kind of source into the three corpus tables."""
