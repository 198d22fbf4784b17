"""Connections, transactions and wake-ups for both stores.

SQLite: WAL, a busy timeout, and one writer at a time inside the process (an asyncio lock plus
``BEGIN IMMEDIATE``), so "database is locked" never reaches a user. PostgreSQL: asyncpg, with
LISTEN/NOTIFY carrying wake-ups between processes. Either way, code that waits for something to
change subscribes to a channel here and is woken after the commit that changed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from sqlalchemy import String, bindparam, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from legato.model.errors import InvalidInput, Unavailable
from legato.store import direct
from legato.store.errors import DuplicateKey
from legato.store.sqlite_inline import inline_connector

__all__ = [
    "CHANNEL",
    "Database",
    "PointQuery",
    "Tx",
    "Watch",
    "decode_json",
    "dump_json",
    "normalize_url",
]

log = logging.getLogger("legato.store")
T = TypeVar("T")

CHANNEL = "legato"
_SQLITE_BUSY_MS = 100
_SQLITE_LOCK_PATIENCE = 30.0  # seconds a writer waits for another process's write lock
_RETRYABLE_PG = {"40001", "40P01"}  # serialization failure, deadlock detected
#: PostgreSQL connections a process keeps for point reads (beside its SQLAlchemy pool).
POINT_CONNECTIONS = 4


def normalize_url(url: str) -> str:
    """Accept plain ``sqlite:///`` and ``postgresql://`` URLs and pick the async drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads(value: Any) -> Any:
    # SQLite gives JSON columns numeric affinity: a stored "1" comes back as the number 1
    if isinstance(value, int | float):
        return value
    return orjson.loads(value)


#: A JSON column's value as a raw read gives it (text), as SQLAlchemy would have decoded it.
decode_json = _loads
#: A value as a JSON column stores it (``None`` as JSON ``null``).
dump_json = _dumps


@dataclass(frozen=True)
class PointQuery:
    """A hot single-row read, written for each database (``?`` and ``$1`` placeholders)."""

    sqlite: str
    postgresql: str


@dataclass
class Tx:
    """A write transaction: the connection plus the wake-ups to send once it commits."""

    conn: AsyncConnection
    wakeups: set[str] = field(default_factory=set)
    # per-database caches that store modules keep across transactions (see limits.py)
    shared: dict[str, Any] = field(default_factory=dict)

    #: what to do once the transaction has committed (never if it rolls back)
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    #: a statement to send after all others, given the NOTIFY payloads of the commit (on
    #: PostgreSQL); it answers those it did not send itself (the events' insert sends one)
    last: Callable[[list[str]], Awaitable[list[str]]] | None = None

    def wake(self, topic: str) -> None:
        self.wakeups.add(topic)

    def after_commit(self, action: Callable[[], None]) -> None:
        self.on_commit.append(action)


async def wait_set(event: asyncio.Event, timeout: float) -> bool:
    """Until ``event`` is set or ``timeout`` seconds pass; True when set. Cheaper than
    ``asyncio.wait_for`` (no task per wait: the engine waits like this at every step), and a
    cancel that comes as the event is set is never lost (``wait_for`` on 3.11 can lose it)."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


class Watch:
    """The wake-ups of one topic while its ``Database.watching`` block runs."""

    def __init__(self, db: Database, topic: str, woken: asyncio.Event) -> None:
        self._db = db
        self._topic = topic
        #: set by every commit that wakes the topic (for waits on several things at once)
        self.woken = woken

    def look(self) -> float | None:
        """Call before each look: when (``time.monotonic()``) the commit that woke the topic
        since the last look came, so that a read begun after it may be shared; None when
        nothing woke it. A commit after this call wakes the next ``wait``."""
        since = self._db.woken_at(self._topic) if self.woken.is_set() else None
        self.woken.clear()
        return since

    async def wait(self, timeout: float) -> bool:
        """Until a commit wakes the topic or ``timeout`` seconds pass; True when woken."""
        return await wait_set(self.woken, timeout)


class Database:
    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL") -> None:
        # WAL + NORMAL: a commit survives a killed process; only a power cut or OS crash can
        # undo the last few. FULL adds an fsync per commit (about 3 ms here) for that case too.
        sqlite_synchronous = sqlite_synchronous.upper()
        if sqlite_synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError("sqlite_synchronous must be NORMAL, FULL, EXTRA or OFF")
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._listeners: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._woken_at: dict[str, float] = {}  # topics with listeners: their last wake-up
        self.shared: dict[str, Any] = {}
        self._pg_listener: Any = None
        self._relisten: asyncio.Task[None] | None = None
        self._point_sqlite: sqlite3.Connection | None = None
        self._point_pool: Any = None
        self._point_lock = asyncio.Lock()
        json_args: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": _loads}
        if self.is_sqlite:
            memory = ":memory:" in self.url or self.url.rstrip("/").endswith("sqlite+aiosqlite:")
            if memory:
                raise ValueError("an in-memory SQLite database cannot be shared; use a file")
            creator = inline_connector(make_url(self.url).database or "")
            self.writer = create_async_engine(
                self.url, async_creator=creator, pool_size=1, max_overflow=0, **json_args
            )
            self.reader = create_async_engine(
                self.url, async_creator=creator, pool_size=4, max_overflow=4, **json_args
            )
            _configure_sqlite(self.writer, immediate=True, synchronous=sqlite_synchronous)
            _configure_sqlite(self.reader, immediate=False, synchronous=sqlite_synchronous)
        else:
            self.writer = create_async_engine(
                self.url, pool_size=10, max_overflow=10, pool_recycle=1800, **json_args
            )
            self.reader = self.writer

    @property
    def dialect(self) -> str:
        return "sqlite" if self.is_sqlite else "postgresql"

    async def close(self) -> None:
        if self._point_sqlite is not None:
            self._point_sqlite.close()
            self._point_sqlite = None
        if self._point_pool is not None:
            with contextlib.suppress(Exception):
                await self._point_pool.close()
            self._point_pool = None
        if self._relisten is not None:
            self._relisten.cancel()
            self._relisten = None
        if self._pg_listener is not None:
            listener, self._pg_listener = self._pg_listener, None
            with contextlib.suppress(Exception):
                await listener.close()
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()

    # -- transactions -------------------------------------------------------------------

    async def write(self, fn: Callable[[Tx], Awaitable[T]], *, retries: int = 5) -> T:
        """Run ``fn`` in one write transaction; retried on deadlocks and serialization errors.
        ``Unavailable`` when the database cannot be reached, ``DuplicateKey`` when a unique
        key refuses a row."""
        try:
            return await self._write(fn, retries)
        except IntegrityError as exc:
            if _unique_violation(exc):
                raise DuplicateKey(str(exc.orig)) from exc
            raise
        except Exception as exc:
            if _unreachable(exc):
                raise _unavailable(exc) from exc
            if _sqlstate(exc) in _UNSTORABLE_TEXT_PG:  # whatever face let a NUL through
                raise InvalidInput(
                    "text holds a character the database cannot store (NUL)",
                    code="invalid_text",
                ) from exc
            raise

    async def _write(self, fn: Callable[[Tx], Awaitable[T]], retries: int) -> T:
        deadline = time.monotonic() + _SQLITE_LOCK_PATIENCE
        attempt = 0
        while True:
            try:
                return await self._write_once(fn)
            except (OperationalError, DBAPIError) as exc:
                attempt += 1
                if not self._retryable(exc):
                    raise
                if self.is_sqlite:  # locked by another process: wait, without blocking
                    if time.monotonic() > deadline:
                        raise
                elif attempt > retries:
                    raise
                await asyncio.sleep(min(0.005 * attempt, 0.1))

    async def _write_once(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        lock = self._write_lock or contextlib.nullcontext()
        async with lock:
            async with self.writer.begin() as conn:
                tx = Tx(conn, shared=self.shared)
                result = await fn(tx)
                # one NOTIFY per transaction, delivered at commit; payloads stay < 8000 B
                payloads = [] if self.is_sqlite else _payloads(sorted(tx.wakeups))
                if tx.last is not None:
                    payloads = await tx.last(payloads)
                for payload in payloads:
                    await direct.run(conn, _NOTIFY, {"payload": payload})
        if tx.wakeups:
            self._wake_local(tx.wakeups)
        for action in tx.on_commit:
            action()
        return result

    def _retryable(self, exc: DBAPIError) -> bool:
        if self.is_sqlite:
            return "locked" in str(exc.orig) or "busy" in str(exc.orig)
        code = getattr(exc.orig, "sqlstate", None) or getattr(
            getattr(exc.orig, "__cause__", None), "sqlstate", None
        )
        return code in _RETRYABLE_PG

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection to read with; ``Unavailable`` when the database cannot be reached."""
        with _reachable():
            async with self.reader.connect() as conn:
                yield conn

    async def point(self, query: PointQuery, *params: Any) -> tuple[Any, ...] | None:
        """One row of a hot read, through the driver itself: no pool checkout, no
        transaction, each call sees every commit made before it. SQLite answers inline
        (microseconds, on a connection of its own); PostgreSQL from a few connections kept
        for these reads, with prepared statements. ``Unavailable`` when the database
        cannot be reached."""
        with _reachable():
            return await self._point(query, params)

    async def rows(self, query: PointQuery, *params: Any) -> list[Sequence[Any]]:
        """Every row of a hot read, the way :meth:`point` reads one (JSON columns as text)."""
        with _reachable():
            if self.is_sqlite:
                conn = self._point_sqlite or self._open_point_sqlite()
                return conn.execute(query.sqlite, params).fetchall()
            pool = self._point_pool or await self._open_point_pool()
            return list(await pool.fetch(query.postgresql, *params))

    async def _point(self, query: PointQuery, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if self.is_sqlite:
            conn = self._point_sqlite or self._open_point_sqlite()
            row = conn.execute(query.sqlite, params).fetchone()
            return None if row is None else tuple(row)
        pool = self._point_pool or await self._open_point_pool()
        record = await pool.fetchrow(query.postgresql, *params)
        return None if record is None else tuple(record)

    def _open_point_sqlite(self) -> sqlite3.Connection:
        path = make_url(self.url).database or ""
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        conn.execute("PRAGMA query_only=ON")
        self._point_sqlite = conn
        return conn

    async def _open_point_pool(self) -> Any:
        async with self._point_lock:
            if self._point_pool is None:
                import asyncpg

                async def keep(_conn: Any) -> None:
                    """Nothing to reset: these connections only ever run single SELECTs."""

                dsn = self.url.replace("postgresql+asyncpg", "postgresql", 1)
                self._point_pool = await asyncpg.create_pool(
                    dsn, min_size=1, max_size=POINT_CONNECTIONS, reset=keep
                )
        return self._point_pool

    # -- wake-ups -----------------------------------------------------------------------

    def subscribe(self, topic: str) -> asyncio.Event:
        ev = asyncio.Event()
        self._listeners[topic].add(ev)
        return ev

    @contextlib.asynccontextmanager
    async def watching(self, topic: str) -> AsyncIterator[Watch]:
        """Follow ``topic`` for as long as the block runs: the one way to subscribe, look,
        wait for the next commit that wakes it (or a timeout) and look again."""
        ev = self.subscribe(topic)
        try:
            yield Watch(self, topic, ev)
        finally:
            self.unsubscribe(topic, ev)

    def unsubscribe(self, topic: str, ev: asyncio.Event) -> None:
        listeners = self._listeners.get(topic)
        if listeners is not None:
            listeners.discard(ev)
            if not listeners:  # a server watching many runs must not keep every topic
                del self._listeners[topic]
                self._woken_at.pop(topic, None)

    def woken_at(self, topic: str) -> float:
        """When (``time.monotonic()``) ``topic`` was last woken while someone listened: a
        read begun after that sees the commit that woke it."""
        return self._woken_at.get(topic, 0.0)

    def _wake_local(self, topics: set[str]) -> None:
        now = time.monotonic()
        for topic in topics:
            listeners = self._listeners.get(topic)
            if listeners:
                self._woken_at[topic] = now
            for ev in list(listeners or ()):
                ev.set()
            if topic.startswith("run:"):
                for ev in list(self._listeners.get("run:*", ())):
                    ev.set()

    async def start_listening(self) -> None:
        """On PostgreSQL, relay NOTIFYs to local subscribers: other processes' commits, and
        this one's too (whose subscribers were woken at commit already: a second wake-up
        costs them one more look). A listening connection that is lost (a server restart,
        a terminated backend) is opened again."""
        if self.is_sqlite or self._pg_listener is not None:
            return
        self._pg_listener = await self._listen()

    async def _listen(self) -> Any:
        import asyncpg

        dsn = self.url.replace("postgresql+asyncpg", "postgresql", 1)
        conn = await asyncpg.connect(dsn)

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            self._wake_local(set(payload.split(",")))

        await conn.add_listener(CHANNEL, on_notify)
        conn.add_termination_listener(self._listener_lost)
        return conn

    def _listener_lost(self, conn: Any) -> None:
        if self._pg_listener is not conn:  # closed by ``close``, or replaced already
            return
        self._pg_listener = None
        self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        delay = 0.1
        while True:
            try:
                conn = await self._listen()
            except Exception as exc:  # the server is still away: try again, less often
                log.warning("listening for changes again failed (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._pg_listener = conn
            # what was committed while no one listened woke no one: every subscriber looks
            self._wake_local(set(self._listeners))
            return


#: SQLSTATE classes and codes that say the server cannot serve now: connection exceptions,
#: shutdown and restart (operator intervention), too many connections, a database gone.
_UNREACHABLE_PG_CLASSES = ("08", "57P")
_UNREACHABLE_PG_CODES = {"53300", "3D000"}


#: character not in repertoire (a NUL in text), untranslatable character (``\\u0000`` in JSONB)
_UNSTORABLE_TEXT_PG = {"22021", "22P05"}


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (exc, orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def _unique_violation(exc: IntegrityError) -> bool:
    return _sqlstate(exc) == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def _unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (rather than refusing a query)."""
    if isinstance(exc, Unavailable):
        return False
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig: BaseException | None = exc.orig
        cause = None if orig is None else orig.__cause__
        code = getattr(orig, "sqlstate", None) or getattr(cause, "sqlstate", None)
        if isinstance(code, str) and (
            code.startswith(_UNREACHABLE_PG_CLASSES) or code in _UNREACHABLE_PG_CODES
        ):
            return True
        return isinstance(cause or orig, OSError) or "unable to open" in str(orig)
    code = getattr(exc, "sqlstate", None)  # the driver's own errors (point reads)
    if isinstance(code, str) and (
        code.startswith(_UNREACHABLE_PG_CLASSES) or code in _UNREACHABLE_PG_CODES
    ):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return "unable to open" in str(exc)
    return isinstance(exc, OSError) or type(exc).__name__ in (
        "ConnectionDoesNotExistError",
        "InterfaceError",
    )


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """Reads within: an error that says the database cannot be reached becomes
    ``Unavailable``; any other passes as it is."""
    try:
        yield
    except Exception as exc:
        if _unreachable(exc):
            raise _unavailable(exc) from exc
        raise


def _unavailable(exc: BaseException) -> Unavailable:
    log.warning("the database cannot be reached: %s", exc)
    return Unavailable("the database cannot be reached right now; try again shortly")


_NOTIFY = direct.DirectStatement(
    text(f"SELECT pg_notify('{CHANNEL}', :payload)").bindparams(
        bindparam("payload", type_=String())
    )
)


def _payloads(topics: list[str], limit: int = 7000) -> list[str]:
    out: list[str] = []
    current = ""
    for topic in topics:
        if current and len(current) + len(topic) + 1 > limit:
            out.append(current)
            current = ""
        current = f"{current},{topic}" if current else topic
    return [*out, current] if current else out


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below decide how a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # short: waits happen on the event loop; Database.write retries with async sleeps
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # straight to the driver: a statement through SQLAlchemy costs more than the BEGIN
        conn.connection.driver_connection.begin(begin)
