"""Login throttling: password guesses are counted per user name and per client address and
refused for a while once there are too many, before any password hash is computed; and the
hash work itself runs on a few threads only, so that a burst of logins cannot slow the
requests that carry API keys."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from legato.model.errors import TooManyAttempts
from legato.service.flights import Flights
from legato.store.database import Database, Tx
from legato.store.login_failures import (
    clear_failures,
    failure_rows,
    purge_failures,
    record_failure,
)

__all__ = ["LoginPolicy", "LoginThrottle"]

T = TypeVar("T")
_PURGE_EVERY = 100  # failures recorded by this process between purges of stale rows
#: How long a check that found no failures stands for a password verified lately.
CLEAR_SECONDS = 1.0
_CLEAR_SIZE = 10_000


@dataclass(frozen=True)
class LoginPolicy:
    """How many failed logins are allowed, and how much hash work runs at once."""

    max_user_failures: int = 5
    max_address_failures: int = 50
    window_seconds: float = 900.0
    lockout_seconds: float = 60.0
    max_lockout_seconds: float = 3600.0
    hash_concurrency: int = 2
    #: how long a login waits for a free hashing thread before it is refused (429)
    hash_wait_seconds: float = 5.0


class LoginThrottle:
    def __init__(self, db: Database, policy: LoginPolicy) -> None:
        self.db = db
        self.policy = policy
        self._pool = ThreadPoolExecutor(
            max_workers=policy.hash_concurrency, thread_name_prefix="legato-hash"
        )
        self._slots = asyncio.Semaphore(policy.hash_concurrency)
        self._recorded = 0
        # (user, address) -> until when a check that found nothing against them stands
        self._clear: dict[tuple[str, str | None], float] = {}
        self._reads: Flights[dict[str, Any]] = Flights()

    @staticmethod
    def subjects(username: str, address: str | None) -> tuple[str, str | None]:
        return f"user:{username}"[:300], (f"addr:{address}"[:300] if address else None)

    async def check(self, username: str, address: str | None, *, verified: bool = False) -> bool:
        """Refuse (429) while the user or the address is locked out; answers whether the
        user has failures on record (a success then clears them). ``verified``: the
        password is one verified lately, so no guess is checked; then a check that found
        nothing against the user and the address stands for :data:`CLEAR_SECONDS` (a
        failure in this process ends that at once)."""
        user, addr = self.subjects(username, address)
        if verified and self._clear.get((user, addr), 0.0) > time.monotonic():
            return False
        started = time.monotonic()
        if verified:  # the checks that find it lapsed meanwhile share one read
            rows = await self._reads.run((user, addr), lambda: self._rows(user, addr))
        else:  # a guess: what was committed before it came
            rows = await self._rows(user, addr)
        now = time.time()
        locked = [r.locked_until for r in rows.values() if r.locked_until and r.locked_until > now]
        if locked:
            raise TooManyAttempts(
                "too many failed logins; try again later",
                retry_after=math.ceil(max(locked) - now),
            )
        if not rows:
            if len(self._clear) >= _CLEAR_SIZE:
                self._clear.clear()
            self._clear[(user, addr)] = started + CLEAR_SECONDS
        return user in rows

    async def _rows(self, user: str, addr: str | None) -> dict[str, Any]:
        async with self.db.read() as conn:
            return await failure_rows(conn, [s for s in (user, addr) if s])

    async def failed(self, username: str, address: str | None) -> None:
        user, addr = self.subjects(username, address)
        policy = self.policy
        self._clear.clear()
        self._recorded += 1
        purge = self._recorded % _PURGE_EVERY == 0

        async def tx_fn(tx: Tx) -> None:
            now = time.time()
            for subject, limit in (
                (user, policy.max_user_failures),
                (addr, policy.max_address_failures),
            ):
                if subject is not None:
                    await record_failure(
                        tx.conn,
                        subject,
                        now,
                        window=policy.window_seconds,
                        limit=limit,
                        lockout=policy.lockout_seconds,
                        max_lockout=policy.max_lockout_seconds,
                    )
            if purge:
                await purge_failures(tx.conn, now - policy.window_seconds)

        await self.db.write(tx_fn)

    async def succeeded(self, username: str) -> None:
        user, _ = self.subjects(username, None)

        async def tx_fn(tx: Tx) -> None:
            await clear_failures(tx.conn, user)

        await self.db.write(tx_fn)

    async def hash_work(self, fn: Callable[..., T], *args: object) -> T:
        """Run one password hash or verification on the bounded pool; refuse (429) when it
        stays busy longer than ``hash_wait_seconds``."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.policy.hash_wait_seconds)
        except TimeoutError:
            raise TooManyAttempts(
                "too many logins at once; try again shortly", retry_after=1
            ) from None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
