"""What a login needs besides the database: the password workers and the failure throttle.

The app factory builds one per process (``build_login_guard``), hands it to the GraphQL app and
closes it on shutdown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from backend.config import Settings
from backend.security.password_workers import PasswordWorkers
from backend.security.throttle import (
    FailureStore,
    LocalFailures,
    LoginThrottle,
    Policy,
    RedisFailures,
)


@dataclass
class LoginGuard:
    passwords: PasswordWorkers
    throttle: LoginThrottle
    #: Header carrying the client address from a trusted proxy; None: the TCP peer.
    address_header: str | None = None

    def close(self) -> None:
        self.passwords.close()

    def address_of(self, headers: Mapping[str, str], peer: str | None) -> str:
        """Who is calling, for throttling: the trusted proxy's header if set, else the peer."""
        if self.address_header:
            value = headers.get(self.address_header, "")
            # The proxy appends the address it saw last; what precedes it is the client's own.
            forwarded = value.rsplit(",", 1)[-1].strip()
            if forwarded:
                return forwarded
        return peer or "unknown"


def build_login_guard(
    settings: Settings, *, redis: Any = None, clock: Callable[[], float]
) -> LoginGuard:
    store: FailureStore = LocalFailures()
    if redis is not None:
        store = RedisFailures(redis, settings.redis_prefix + "login:", fallback=store)
    throttle = LoginThrottle(
        store,
        clock=clock,
        account=Policy(
            settings.login_max_failures, settings.login_lockout_s, settings.login_lockout_max_s
        ),
        address=Policy(
            settings.login_max_failures_per_address,
            settings.login_lockout_s,
            settings.login_lockout_max_s,
        ),
    )
    return LoginGuard(
        passwords=PasswordWorkers(settings.password_workers, settings.password_queue),
        throttle=throttle,
        address_header=settings.login_address_header,
    )
