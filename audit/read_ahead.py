"""A query's rows read ahead on a thread while the caller works through them.

Verifying the trail alternates between waiting for PostgreSQL (to sort, format and send
the next chunk of events) and hashing in Python. psycopg releases the GIL while it waits
for the server, so a thread fetching the next chunks lets the server work on its own core
while this thread hashes: verification takes about the longer of the two, not their sum.
The query runs on the caller's connection and inside its transaction (one snapshot), as
a server-side cursor, so memory stays bounded by `depth` chunks whatever the trail holds.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import Any, Final

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import ValuesListIterable
from django.db.models.sql.constants import CURSOR

_POLL_SECONDS: Final = 0.05
_CHUNK: Final = "chunk"
_ERROR: Final = "error"
_END: Final = "end"


def read_ahead(
    queryset: QuerySet[Any, Any], chunk_size: int, depth: int = 2
) -> Generator[tuple[Any, ...]]:
    """The rows of a values_list() queryset, as its iterator() yields them, fetched up to
    `depth` (at least 1) chunks ahead.

    While reading, run no other query on this connection: the thread's FETCHes share its
    transaction, so a failure of either would abort the other's. Close the iterator
    (contextlib.closing) when stopping early, so the thread and the server-side cursor
    end before the connection is used again. Elsewhere than PostgreSQL, and where
    server-side cursors are off (a transaction-pooling proxy), rows are read on this
    thread as iterator() reads them: SQLite holds the GIL while it reads, so a thread
    would gain nothing there."""
    if queryset._iterable_class is not ValuesListIterable:
        raise TypeError("read_ahead reads values_list() querysets (rows as tuples) only")
    database = connections[queryset.db]
    if database.vendor != "postgresql" or database.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        return _read_here(queryset, chunk_size)
    return _read_ahead(queryset, chunk_size, max(1, depth))


def _read_here(queryset: QuerySet[Any, Any], chunk_size: int) -> Generator[tuple[Any, ...]]:
    yield from queryset.iterator(chunk_size=chunk_size)


def _read_ahead(
    queryset: QuerySet[Any, Any], chunk_size: int, depth: int
) -> Generator[tuple[Any, ...]]:
    compiler = queryset.query.get_compiler(using=queryset.db)
    # The query runs here, on this thread's connection; only the fetching moves.
    cursor = compiler.execute_sql(CURSOR, chunked_fetch=True)
    if cursor is None:  # a query that can match nothing (an empty IN list, say)
        return
    try:
        reader = _Reader(cursor, chunk_size, depth, compiler.col_count
                         if compiler.has_extra_select else None)  # fmt: skip
    except BaseException:  # no thread: nothing else will close the cursor
        cursor.close()
        raise
    try:
        yield from compiler.results_iter(results=reader.chunks(), tuple_expected=True)
    except GeneratorExit:  # closed early by the caller: its transaction goes on
        reader.stop(cancel=False)
        raise
    except BaseException:  # an interrupt while waiting, or the query failed
        reader.stop(cancel=True)
        raise
    reader.stop(cancel=False)


class _Reader:
    """Fetches chunks of a server-side cursor on a daemon thread into a bounded queue."""

    def __init__(self, cursor: Any, chunk_size: int, depth: int, columns: int | None) -> None:
        self._cursor, self._chunk_size, self._columns = cursor, chunk_size, columns
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._pull, name="audit-read-ahead", daemon=True)
        self._thread.start()

    def chunks(self) -> Iterator[list[Any]]:
        while True:
            kind, value = self._queue.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    def stop(self, *, cancel: bool) -> None:
        """End the thread, then close the cursor (from here: the thread has let go).

        With `cancel`, a FETCH still running on the server is cancelled first, so an
        interrupt takes effect now rather than when the server is done; the transaction
        is then aborted, which is why an ordinary early stop waits for the FETCH instead."""
        self._stopping.set()
        if self._thread is not threading.current_thread():  # not from a finaliser on it
            if cancel and self._thread.is_alive():
                self._cursor.connection.cancel_safe()
            self._thread.join()
        self._cursor.close()

    def _pull(self) -> None:
        try:
            while not self._stopping.is_set():
                rows = self._cursor.fetchmany(self._chunk_size)
                if not rows:
                    self._put(_END, None)
                    return
                if self._columns is not None:
                    rows = [row[: self._columns] for row in rows]
                if not self._put(_CHUNK, rows):
                    return
        except BaseException as error:  # handed to the reader, raised there
            self._put(_ERROR, error)

    def _put(self, kind: str, value: Any) -> bool:
        # Bounded waits, so a reader that stopped early never leaves this thread blocked.
        while not self._stopping.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
