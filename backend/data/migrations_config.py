"""Config for Tortoise's own CLI, used to write new migrations after a model change:

.venv/bin/tortoise -c backend.data.migrations_config.TORTOISE_ORM makemigrations
"""

import os

from backend.data.db import tortoise_config

TORTOISE_ORM = tortoise_config(
    os.environ.get("DATABASE_URL", "sqlite:///data/makemigrations.sqlite3")
)
