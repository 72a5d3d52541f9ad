"""Hot-path state: config snapshots loaded from the database and refreshed by events."""
