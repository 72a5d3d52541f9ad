"""An in-process event bus whose publish fails while ``down``, as a Redis client's does."""

from __future__ import annotations

from typing import Any

from backend.data.events import LocalBus


class FlakyBus(LocalBus):
    """A LocalBus whose publish fails like a Redis client while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused = 0

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        if self.down:
            self.refused += 1
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")
        await super().publish(channel, message)
