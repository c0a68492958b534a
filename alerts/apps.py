from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from alerts.triggers import match_stale_alerts
        from core.reconciler import EXTRA_DUTIES

        if match_stale_alerts not in EXTRA_DUTIES:
            EXTRA_DUTIES.append(match_stale_alerts)
