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
from django.db.models.sql.constants import MULTI

_POLL_SECONDS: Final = 0.05
_CHUNK: Final = "chunk"
_ERROR: Final = "error"
_END: Final = "end"


def read_ahead(
    queryset: QuerySet[Any, Any], chunk_size: int, depth: int = 2
) -> Generator[tuple[Any, ...]]:
    """The rows of a values_list() queryset, as its iterator() yields them, fetched up to
    `depth` chunks ahead.

    Close the iterator (contextlib.closing) when stopping early, so the reading thread
    and the server-side cursor end before the connection is used again. Databases other
    than PostgreSQL read in this thread, as iterator() does: SQLite holds the GIL while
    it reads, so a thread would gain nothing there."""
    if queryset._iterable_class is not ValuesListIterable:
        raise TypeError("read_ahead reads values_list() querysets (rows as tuples) only")
    if connections[queryset.db].vendor != "postgresql":
        return _read_here(queryset, chunk_size)
    return _read_ahead(queryset, chunk_size, depth)


def _read_here(queryset: QuerySet[Any, Any], chunk_size: int) -> Generator[tuple[Any, ...]]:
    yield from queryset.iterator(chunk_size=chunk_size)


def _read_ahead(
    queryset: QuerySet[Any, Any], chunk_size: int, depth: int
) -> Generator[tuple[Any, ...]]:
    compiler = queryset.query.get_compiler(using=queryset.db)
    # The query runs here, on this thread's connection; only the fetching moves.
    chunks = compiler.execute_sql(MULTI, chunked_fetch=True, chunk_size=chunk_size)
    reader = _Reader(chunks, depth)
    try:
        yield from compiler.results_iter(results=reader.chunks(), tuple_expected=True)
    finally:
        reader.stop()


class _Reader:
    """Pulls chunks from a chunk iterator on a daemon thread into a bounded queue."""

    def __init__(self, chunks: Iterator[list[Any]], depth: int) -> None:
        self._source = chunks
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

    def stop(self) -> None:
        """End the thread, then close the cursor (from here: the thread has let go)."""
        self._stopping.set()
        self._thread.join()
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def _pull(self) -> None:
        try:
            for chunk in self._source:
                if not self._put(_CHUNK, chunk):
                    return
        except BaseException as error:  # handed to the reader, raised there
            self._put(_ERROR, error)
            return
        self._put(_END, None)

    def _put(self, kind: str, value: Any) -> bool:
        # Bounded waits, so a reader that stopped early never leaves this thread blocked.
        while not self._stopping.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False
