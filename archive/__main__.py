from archive.cli import entry

raise SystemExit(entry())
