"""Query-string filters for GET /api/v1/audit/."""

from __future__ import annotations

# django-filter ships no type information; the ignores stay harmless if stubs arrive.
import django_filters  # type: ignore[import-untyped,unused-ignore]

from audit.models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):  # type: ignore[misc,unused-ignore]
    run = django_filters.NumberFilter(field_name="run_id", help_text="run id")
    stream = django_filters.CharFilter(help_text='e.g. "run:42", "playbook:contain-host"')
    kind = django_filters.CharFilter(help_text='e.g. "step.succeeded"')
    playbook = django_filters.CharFilter()
    actor = django_filters.CharFilter(help_text='e.g. "user:carol"')
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ("run", "stream", "kind", "playbook", "actor", "since", "until")
