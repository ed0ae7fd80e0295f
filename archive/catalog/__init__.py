"""The catalog: a derived, rebuildable index of captures, pages, text and changes, in
SQLite (embedded default) or PostgreSQL (shared), with full-text search. Never evidence:
`archive verify` never reads it."""
