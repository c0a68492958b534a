"""POST /api/v1/hooks/{source}/: the raw body is read once, and intake decides."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from alerts.intake import accept, refuse

# Read at most this much whatever a source allows, so no body can exhaust memory.
HARD_LIMIT_BYTES = 16 * 1024 * 1024


@csrf_exempt
@require_POST
def hook(request: HttpRequest, source: str) -> JsonResponse:
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > HARD_LIMIT_BYTES:
        answer = refuse(source, 413, "too_large", f"the body is over {HARD_LIMIT_BYTES} bytes")
    else:
        body = request.read(HARD_LIMIT_BYTES + 1)
        answer = accept(source, dict(request.headers), body, request.GET.get("token", ""))
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response
