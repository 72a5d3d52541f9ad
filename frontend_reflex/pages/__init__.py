"""One module per dashboard page; each exposes ``page()`` and is registered in ``app.py``."""
