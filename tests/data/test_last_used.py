"""``api_keys.last_used_at``: written by the log writer, at most once per key per interval, a
throttled use written later rather than lost, never moved backwards."""

from __future__ import annotations

import datetime as dt

from tortoise.transactions import in_transaction

from backend.data import last_used
from backend.data.events import LocalBus
from backend.data.last_used import LastUsed
from backend.data.log_record import LogRecord
from backend.data.log_writer import LogWriter
from backend.data.models.keys import ApiKey
from backend.data.models.tenancy import User

T0 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


class Tick:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_write_per_key_per_interval_and_nothing_lost() -> None:
    tick = Tick()
    used = LastUsed(60, clock=tick)
    used.note("sb-a", T0)
    used.note("sb-a", T0 - dt.timedelta(seconds=5))  # older: ignored
    used.note("sb-b", T0)
    assert used.take() == {"sb-a": T0, "sb-b": T0}
    # Used again within the interval: pending, not due.
    later = T0 + dt.timedelta(seconds=10)
    used.note("sb-a", later)
    tick.now += 30
    assert used.take() == {} and used.pending == 1
    # Due once the interval has passed, with no new use needed.
    tick.now += 30
    assert used.take() == {"sb-a": later} and used.pending == 0
    # A failed write gives its uses back, due at once.
    used.note("sb-b", later)
    tick.now += 60
    taken = used.take()
    used.give_back(taken)
    assert used.take() == {"sb-b": later}
    # A clean stop writes whatever is pending, throttled or not.
    used.note("sb-b", later + dt.timedelta(seconds=1))
    assert used.take() == {}
    assert used.take(force=True) == {"sb-b": later + dt.timedelta(seconds=1)}


async def _key(prefix: str) -> ApiKey:
    user = await User.create(name=prefix, email=f"{prefix}@example.com")
    return await ApiKey.create(prefix=prefix, key_hash=prefix * 4, user=user)


def _use(prefix: str, when: dt.datetime, user_id: int | None) -> LogRecord:
    return LogRecord("r", when, "/v1/chat/completions", key_prefix=prefix, user_id=user_id)


async def _last(prefix: str) -> dt.datetime | None:
    key = await ApiKey.get(prefix=prefix)
    return key.last_used_at


async def test_the_writer_throttles_and_flushes_on_close(db: str) -> None:
    key = await _key("sb-used")
    stranger = await _key("sb-never")
    writer = LogWriter(LocalBus(), last_used_interval_s=3600)
    writer.submit(_use("sb-used", T0, key.user_id))  # type: ignore[attr-defined]
    # A refused request of a revoked key carries its prefix but no owner: not a use.
    writer.submit(_use("sb-never", T0, None))
    assert await writer.flush()
    assert await _last("sb-used") == T0
    assert await _last("sb-never") is None
    # Within the interval a second use is not written (one write per key per interval)...
    await ApiKey.filter(id=key.id).update(last_used_at=None)
    later = T0 + dt.timedelta(minutes=5)
    writer.submit(_use("sb-used", later, key.user_id))  # type: ignore[attr-defined]
    assert await writer.flush()
    assert await writer.flush()
    assert await _last("sb-used") is None
    # ...and is written on a clean stop rather than lost.
    await writer.close()
    assert await _last("sb-used") == later
    assert stranger.last_used_at is None


async def test_a_write_never_moves_last_used_backwards(db: str) -> None:
    await _key("sb-order")
    async with in_transaction() as conn:
        await last_used.write(conn, {"sb-order": T0})
    async with in_transaction() as conn:
        # Another instance's older batch arrives late.
        await last_used.write(conn, {"sb-order": T0 - dt.timedelta(hours=1)})
    assert await _last("sb-order") == T0
