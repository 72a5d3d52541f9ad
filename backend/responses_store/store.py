"""``ResponseStore``: the Responses API's stored responses (``gw.responses_store``).

The route of ``POST /v1/responses`` (``backend.proxy.responses``) makes two calls (README,
"Stored responses"):

- ``load_conversation(principal, previous_response_id)`` before decoding: the earlier turns as
  Responses items (each response's input items then its output, oldest first). Unknown, expired,
  deleted or another organization's id: 404 ``previous_response_not_found``, as OpenAI answers.
- ``save(principal, response=..., input_items=..., ...)`` once the answer is complete: no I/O and
  no wait. A background task redacts the copy (``backend.responses_store.redact``), puts it in
  this process's cache and in Redis at once, and queues the database row (``RowWriter``). Until
  it is done, a read of that id on this instance waits for it, so a client that continues a
  conversation right away always finds its previous turn here.

Reads go process cache -> Redis -> database. Another instance's fresh response may not be in
Redis or the database yet for a few milliseconds (its background write races the client's next
request), so an id found nowhere is looked up again for a short grace time before it is a 404.
Every read checks the caller's scope (``scope_of``): another organization's id is a 404, the
same answer as an unknown one, at once.

Deletes are synchronous (database and Redis) and announced on the bus ``responses`` channel, so
every instance drops its cached copy and any queued row of that id. The id stays marked deleted
for a minute (in Redis and in each instance), so a row or Redis entry some instance was writing
at that very moment is never served, and it is deleted again a moment later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from backend.data.events import EventBus
from backend.dlp.redact import Redactor
from backend.dlp.vault import Vault
from backend.ir.errors import InvalidRequest
from backend.responses_store import database
from backend.responses_store.layers import LocalCache, RedisLayer, Tombstones
from backend.responses_store.records import (
    StoredRecord,
    conversation_items,
    listed_items,
    scope_of,
    to_datetime,
)
from backend.responses_store.redact import redact_stored, stored_size
from backend.state.snapshot import Principal

log = logging.getLogger("switchboard.responses")

CHANNEL = "responses"
#: A conversation's earlier responses get a new expiry only when theirs is this much older than
#: the new one's (a fraction of the TTL): at most a handful of updates per conversation per TTL.
_EXTEND_SLACK = 0.1
#: Statuses of answers worth keeping: a failed response cannot be continued (as at OpenAI).
_KEPT = frozenset({"completed", "incomplete"})
#: How long a deleted id stays marked deleted (well past the second delete of its row).
_TOMBSTONE_S = 60.0
#: The id column's length.
MAX_ID = 100

#: (Redactor or None) for a principal; raises when its DLP policy cannot be used.
RedactorFor = Callable[[Principal], Redactor | None]
#: ``fn(deadline) -> T`` run bounded (inline when small, else a thread): ``ScanRunner.run``.
ScanRun = Callable[..., Any]


def not_found(response_id: str, *, previous: bool = False) -> InvalidRequest:
    """OpenAI's own 404 for a response id it does not know (an ``invalid_request_error``)."""
    shown = response_id[:100]
    if previous:
        return InvalidRequest(
            f"Previous response with id '{shown}' not found.",
            status=404,
            code="previous_response_not_found",
            param="previous_response_id",
        )
    return InvalidRequest(f"Response with id '{shown}' not found.", status=404)


class ResponseStore:
    def __init__(
        self,
        *,
        bus: EventBus,
        redis: Any,
        redis_prefix: str,
        ttl_s: float,
        flush_interval_s: float = 0.5,
        sweep_interval_s: float = 60.0,
        redactor_for: RedactorFor,
        scan: ScanRun | None = None,
        instance_id: str = "",
        clock: Callable[[], float] = time.time,
        grace_s: float | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self._bus = bus
        self._redis = RedisLayer(redis, redis_prefix) if redis is not None else None
        self._cache = LocalCache()
        self.writer = database.RowWriter(retry_s=flush_interval_s)
        self._sweep_interval_s = sweep_interval_s
        self._redactor_for = redactor_for
        self._scan = scan
        self._instance_id = instance_id
        self._clock = clock
        #: How long an id found nowhere is looked for again (another instance's write racing).
        self._grace_s = grace_s if grace_s is not None else 0.5
        self._pending: dict[str, asyncio.Future[StoredRecord | None]] = {}
        self._deleted = Tombstones(_TOMBSTONE_S)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.writer.start()
        self._loops = [
            asyncio.create_task(self._sweep_loop(), name="responses-sweep"),
            asyncio.create_task(self._listen(), name="responses-listen"),
        ]
        await asyncio.wait_for(self._listening.wait(), timeout=10)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait for the background work under way (saves, second deletes) to finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def close(self) -> None:
        """Finish the saves under way, write every queued row, stop the loops."""
        await self.idle()
        for task in self._loops:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.writer.close()

    # -- the POST /v1/responses side -----------------------------------------------------------
    async def load_conversation(
        self, principal: Principal, previous_response_id: str
    ) -> list[dict[str, Any]]:
        """The conversation ``previous_response_id`` ends, as Responses items (oldest first)."""
        chain = await self._chain(scope_of(principal), previous_response_id, previous=True)
        return conversation_items(chain)

    async def save(
        self,
        principal: Principal,
        *,
        response: dict[str, Any],
        input_items: list[dict[str, Any]],
        previous_response_id: str | None = None,
        request_id: str | None = None,
        dlp: Any = None,
    ) -> None:
        """Keep a finished answer (no I/O here: the work runs in a background task).

        ``response`` and ``input_items`` are what the client saw and sent (original values);
        ``dlp`` is the request's vault (``RequestContext.vault``: ``(scope, Vault)``, or None).
        """
        response_id = response.get("id")
        if not isinstance(response_id, str) or response.get("status") not in _KEPT:
            return
        if response_id in self._pending:
            return  # saved once already (a stream's terminal event seen twice)
        vault = dlp[1] if isinstance(dlp, tuple) else dlp
        fut: asyncio.Future[StoredRecord | None] = asyncio.get_running_loop().create_future()
        self._pending[response_id] = fut
        task = asyncio.create_task(
            self._keep(
                principal, response, input_items, previous_response_id, request_id, vault, fut
            ),
            name="responses-save",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep(
        self,
        principal: Principal,
        response: dict[str, Any],
        input_items: list[dict[str, Any]],
        previous_response_id: str | None,
        request_id: str | None,
        vault: Vault | None,
        fut: asyncio.Future[StoredRecord | None],
    ) -> None:
        response_id = str(response["id"])
        rec: StoredRecord | None = None
        try:
            rec = await self._build(
                principal, response, input_items, previous_response_id, request_id, vault
            )
            raw = rec.to_bytes()
            self._cache.put(rec, len(raw))
            # Redis before the row, and both before anyone can find it: whoever deletes it
            # found it, so its delete comes after these writes, never before one of them.
            if self._redis is not None:
                await self._redis.put(rec, raw, self._clock())
            self.writer.submit(rec)
        except Exception as exc:
            # Never the exception text: it may quote the conversation.
            log.error("response %s was not stored: %s", response_id, type(exc).__name__)
            rec = None
        finally:
            self._pending.pop(response_id, None)
            if not fut.done():
                fut.set_result(rec)

    async def _build(
        self,
        principal: Principal,
        response: dict[str, Any],
        input_items: list[dict[str, Any]],
        previous_response_id: str | None,
        request_id: str | None,
        vault: Vault | None,
    ) -> StoredRecord:
        scope = scope_of(principal)
        redactor = self._redactor_for(principal)
        if redactor is not None or vault:

            def scan(deadline: float | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
                return redact_stored(response, input_items, redactor, vault, deadline)

            if self._scan is not None:
                custom = redactor is not None and redactor.has_custom
                size = stored_size(response, input_items)
                response, input_items = await self._scan(scan, size, inline_ok=not custom)
            else:
                response, input_items = scan()
        now = self._clock()
        expires_at = now + self.ttl_s
        ancestors: list[str] = []
        if previous_response_id:
            parent = await self._find(scope, previous_response_id, grace=False)
            if parent is None:
                ancestors = [previous_response_id]  # gone meanwhile: continuing it is a 404
            else:
                ancestors = [*parent.ancestors, parent.id]
                if parent.expires_at < expires_at - self.ttl_s * _EXTEND_SLACK:
                    self._extend(ancestors, expires_at)
        return StoredRecord(
            id=str(response["id"]),
            scope=scope,
            created_at=_created_at(response, now),
            expires_at=expires_at,
            response=response,
            input_items=input_items,
            previous_response_id=previous_response_id,
            ancestors=ancestors,
            org_id=principal.org_id,
            user_id=principal.user.id if principal.user else None,
            app_id=principal.app.id if principal.app else None,
            request_id=request_id,
        )

    def _extend(self, ids: list[str], expires_at: float) -> None:
        """The conversation goes on: its earlier responses live as long as its newest."""
        self.writer.extend(ids, expires_at)
        now = self._clock()
        for response_id in ids:
            rec = self._cache.get(response_id, now)
            if rec is not None:
                rec.expires_at = expires_at
                if self._redis is not None:
                    self._spawn(self._redis.put(rec, rec.to_bytes(), now))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- reads ---------------------------------------------------------------------------------
    async def get(self, principal: Principal, response_id: str) -> StoredRecord:
        rec = await self._find(scope_of(principal), response_id, grace=True)
        if rec is None:
            raise not_found(response_id)
        return rec

    async def input_items(self, principal: Principal, response_id: str) -> list[dict[str, Any]]:
        """Every item used to generate the response (earlier turns included), oldest first."""
        return listed_items(await self._chain(scope_of(principal), response_id, previous=False))

    async def _chain(self, scope: str, response_id: str, *, previous: bool) -> list[StoredRecord]:
        last = await self._find(scope, response_id, grace=True)
        if last is None:
            raise not_found(response_id, previous=previous)
        found = await self._find_many(scope, last.ancestors)
        missing = [i for i in last.ancestors if i not in found]
        if missing:
            # An earlier turn was deleted or expired: the conversation cannot be rebuilt.
            err = not_found(missing[0], previous=previous)
            err.message += f" It is part of the conversation of '{response_id[:100]}'."
            raise err
        return [*(found[i] for i in last.ancestors), last]

    async def _find(self, scope: str, response_id: str, *, grace: bool) -> StoredRecord | None:
        found = await self._find_many(scope, [response_id], grace=grace)
        return found.get(response_id)

    async def _find_many(
        self, scope: str, ids: list[str], *, grace: bool = False
    ) -> dict[str, StoredRecord]:
        """The records of ``ids`` in ``scope`` that exist and have not expired."""
        # Longer than the id column: nobody stored it (and it is not worth a lookup).
        ids = [i for i in ids if len(i) <= MAX_ID]
        found: dict[str, StoredRecord] = {}
        foreign: set[str] = set()
        now = self._clock()

        def take(rec: StoredRecord | None) -> None:
            if rec is None or not rec.alive(now) or self._deleted(rec.id, now):
                return
            if rec.scope != scope:
                foreign.add(rec.id)
            else:
                found[rec.id] = rec

        for response_id in ids:
            fut = self._pending.get(response_id)
            if fut is not None:
                with contextlib.suppress(TimeoutError):
                    take(await asyncio.wait_for(asyncio.shield(fut), 30))
            else:
                take(self._cache.get(response_id, now))
        rest = [i for i in ids if i not in found and i not in foreign]
        delay = 0.02
        deadline = time.monotonic() + (self._grace_s if grace else 0.0)
        while rest:
            for rec, size in (await self._read_shared(rest, now)).values():
                if rec.alive(now):
                    self._cache.put(rec, size)
                take(rec)
            rest = [i for i in rest if i not in found and i not in foreign]
            if not rest or time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        return found

    async def _read_shared(self, ids: list[str], now: float) -> dict[str, tuple[StoredRecord, int]]:
        """Redis first, the database for what Redis does not have (or has expired)."""
        out: dict[str, tuple[StoredRecord, int]] = {}
        dead: set[str] = set()
        if self._redis is not None:
            found, dead = await self._redis.get_many(ids)
            for response_id in dead:
                self._deleted.add(response_id, now)
            for response_id, raw in found.items():
                try:
                    rec = StoredRecord.from_bytes(raw)
                except (ValueError, TypeError):  # written by another version: the DB answers
                    log.warning("unreadable cached response %s in Redis", response_id)
                    continue
                if rec.alive(now):
                    out[response_id] = (rec, len(raw))
        rest = [i for i in ids if i not in out and i not in dead]
        if rest:
            out.update(await database.fetch(rest, now))
        return out

    # -- delete --------------------------------------------------------------------------------
    async def delete(self, principal: Principal, response_id: str) -> None:
        scope = scope_of(principal)
        if await self._find(scope, response_id, grace=True) is None:
            raise not_found(response_id)
        self._drop_local(response_id)
        self._deleted.add(response_id, self._clock())
        if self._redis is not None:
            await self._redis.delete(response_id, tombstone_s=_TOMBSTONE_S)
        await database.delete(response_id, scope)
        try:
            await self._bus.publish(CHANNEL, {"deleted": response_id, "origin": self._instance_id})
        except Exception as exc:  # the row is gone; other instances' copies expire from Redis
            log.warning("announcing a deleted response failed: %s", type(exc).__name__)
        # A row another instance was writing while this ran could land after the delete.
        self._spawn(self._delete_again(response_id, scope))

    async def _delete_again(self, response_id: str, scope: str) -> None:
        await asyncio.sleep(self._grace_s + 1.0)
        try:
            await database.delete(response_id, scope)
        except Exception as exc:
            log.warning("deleting response %s again failed: %s", response_id, type(exc).__name__)
        if self._redis is not None:
            await self._redis.delete(response_id)

    def _drop_local(self, response_id: str) -> None:
        self._cache.discard(response_id)
        self.writer.forget(response_id)

    async def _listen(self) -> None:
        async with self._bus.subscribe(CHANNEL) as events:
            self._listening.set()
            async for event in events:
                response_id = event.get("deleted")
                if not isinstance(response_id, str) or event.get("origin") == self._instance_id:
                    continue
                self._drop_local(response_id)
                self._deleted.add(response_id, self._clock())

    # -- expiry --------------------------------------------------------------------------------
    async def sweep(self) -> int:
        return await database.sweep(to_datetime(self._clock()))

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            try:
                removed = await self.sweep()
            except Exception as exc:  # the database may be out: try again next time
                log.warning("sweeping expired responses failed: %s", type(exc).__name__)
                continue
            if removed:
                log.info("deleted %d expired stored responses", removed)


def _created_at(response: Mapping[str, Any], now: float) -> float:
    created = response.get("created_at")
    return float(created) if isinstance(created, (int, float)) else now
