from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"

    def ready(self) -> None:
        # Actors bind to the broker that is current when they are declared.
        from core.broker import configure_broker

        configure_broker()
        import core.subplaybooks
        import core.tasks  # noqa: F401
        from core.playbook_testing import failing_test_problems
        from playbooks.versions import add_publish_check

        add_publish_check(failing_test_problems)
