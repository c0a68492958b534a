"""The baseline for bench/intake.py: a Django view that reads the body and inserts one row.

Mounted at /bench/minimal/ only when BULWARK_BENCH_VIEWS=1 (see config/urls.py)."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

TABLE = "bench_minimal_insert"


def ensure_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, body text NOT NULL, "
                       "received_at timestamptz NOT NULL DEFAULT now())")  # fmt: skip


@csrf_exempt
def minimal(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (body) VALUES (%s) RETURNING id",  # noqa: S608 - a fixed name
            [request.body.decode()],
        )
        (row_id,) = cursor.fetchone()
    return JsonResponse({"id": row_id}, status=202)
