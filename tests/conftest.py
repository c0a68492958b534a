"""Shared fixtures: a small cast of users with roles (Alice authors, Bob analyses,
Carol audits, Dave only views) and API clients for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group, User
from django.db.backends.signals import connection_created
from rest_framework.test import APIClient

from accounts import roles


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: pytest.FixtureRequest) -> None:
    """Real password hashing costs about a second a user; tests need no such strength."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]


def _user(username: str, *groups: str, superuser: bool = False) -> User:
    user = User.objects.create_user(username=username, password=f"{username}-pw-123456")
    if superuser:
        user.is_superuser = user.is_staff = True
        user.save()
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def alice(db: None) -> User:
    """Alice is an author (writes and publishes playbooks) and an analyst."""
    return _user("alice", roles.AUTHOR, roles.ANALYST)


@pytest.fixture
def bob(db: None) -> User:
    """Bob is an analyst: starts, cancels and retries runs."""
    return _user("bob", roles.ANALYST)


@pytest.fixture
def carol(db: None) -> User:
    """Carol is an auditor."""
    return _user("carol", roles.AUDITOR)


@pytest.fixture
def dave(db: None) -> User:
    """Dave can only view."""
    return _user("dave", roles.VIEWER)


@pytest.fixture
def admin_user(db: None) -> User:
    return _user("root", roles.ADMIN, superuser=True)


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def fresh_engine_caches() -> None:
    """Test databases reuse ids after a rollback; production never does. Start each test
    with empty per-process caches keyed by ids."""
    from audit.events import _known_heads
    from core.dry_run import dry_run_fixtures
    from core.execution import pinned_version
    from core.transitions import _plans

    pinned_version.cache_clear()
    dry_run_fixtures.cache_clear()
    _plans.clear()
    _known_heads.clear()


@pytest.fixture(autouse=True)
def inline_dispatch(request: pytest.FixtureRequest):
    """Queued units wait in memory until a test drains them (end-to-end tests use the broker)."""
    from core.dispatch import InlineDispatcher, set_dispatcher

    if request.node.get_closest_marker("e2e"):
        yield None
        return
    dispatcher = InlineDispatcher()
    previous = set_dispatcher(dispatcher)
    yield dispatcher
    set_dispatcher(previous)


def _allow_audit_truncate(sender: object, connection: object, **kwargs: object) -> None:
    """Transactional tests end by truncating every table, which the audit trigger refuses
    unless the session says so; only the test process ever says so."""
    if getattr(connection, "vendor", "") == "postgresql":
        with connection.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SET bulwark.audit_allow_truncate = 'on'")


connection_created.connect(_allow_audit_truncate)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """No lease a test left held outlives it: released, and any renewal in flight waited
    for, before the test's fixtures are torn down. A renewal during the next test (which
    may have no database) would fail there; one during the database flush of a
    transactional test could deadlock with its TRUNCATE (seen once in CI)."""
    from core import lease

    if lease._keeper is not None:
        lease._keeper.release_all()
    yield


@pytest.fixture(autouse=True, scope="session")
def stop_heartbeat_at_the_end():  # type: ignore[no-untyped-def]
    """The heartbeat thread holds its own database session; end it before the test
    database is dropped."""
    yield
    from core.lease import shutdown

    shutdown()
