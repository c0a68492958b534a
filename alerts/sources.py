"""Operations on alert sources: create one, rotate its secret (both audited)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from alerts.intake import forget_source
from alerts.models import AlertSource
from audit.events import record_event


class SourceInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _describe(source: AlertSource) -> dict[str, Any]:
    return {"source": source.slug, "format": source.format, "auth": source.auth}


def create_source(*, slug: str, format: str, auth: str, secret: str, actor: str,
                  title: str = "", **settings: Any) -> AlertSource:  # fmt: skip
    """A new source with its (encrypted) secret; for basic auth the secret is `user:password`."""
    if format not in AlertSource.Format.values:
        raise SourceInvalid("format", f"one of {', '.join(AlertSource.Format.values)}")
    if auth not in AlertSource.Auth.values:
        raise SourceInvalid("auth", f"one of {', '.join(AlertSource.Auth.values)}")
    if len(secret) < 16:
        raise SourceInvalid("secret", "at least 16 characters")
    if auth == "basic" and ":" not in secret:
        raise SourceInvalid("secret", "basic auth takes `user:password`")
    if settings.get("mapping"):
        from alerts.mappings import MappingError
        from alerts.mappings.custom import check_mapping

        try:
            check_mapping(settings["mapping"])
        except MappingError as exc:
            raise SourceInvalid(exc.path, exc.message) from None
    source = AlertSource(slug=slug, format=format, auth=auth, title=title, **settings)
    source.secrets = {"current": secret}
    with transaction.atomic():
        source.save()
        record_event(
            stream="system", kind="alert_source.created", actor=actor, payload=_describe(source)
        )
        forget_source(source.slug)
        transaction.on_commit(lambda: forget_source(source.slug))
    return source


def rotate_secret(*, source: AlertSource, secret: str, actor: str) -> AlertSource:
    """Make `secret` current and keep the old one valid until the next rotation, so the
    sender can be moved over without losing deliveries."""
    if len(secret) < 16:
        raise SourceInvalid("secret", "at least 16 characters")
    with transaction.atomic():
        locked = AlertSource.objects.select_for_update(no_key=True).get(pk=source.pk)
        locked.secrets = {"current": secret, "previous": locked.secrets.get("current")}
        locked.save(update_fields=["secrets_encrypted", "updated_at"])
        record_event(
            stream="system",
            kind="alert_source.secret_rotated",
            actor=actor,
            payload=_describe(locked),
        )
        forget_source(locked.slug)  # now, and after COMMIT (a read meanwhile saw the old row)
        transaction.on_commit(lambda: forget_source(locked.slug))
    return locked
