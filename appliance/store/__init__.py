"""Data files: config.json (tinydb, atomic) and history.sqlite3 (sqlite3, WAL)."""
