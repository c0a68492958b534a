from django.apps import AppConfig


class WebConfig(AppConfig):
    """The web UI: server-rendered pages for analysts, approvers, authors and auditors."""

    name = "web"
    default_auto_field = "django.db.models.BigAutoField"
