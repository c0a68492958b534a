from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from alerts.schedules import fire_due_schedules
        from alerts.triggers import match_stale_alerts
        from core.reconciler import EXTRA_DUTIES

        for duty in (match_stale_alerts, fire_due_schedules):
            if duty not in EXTRA_DUTIES:
                EXTRA_DUTIES.append(duty)
