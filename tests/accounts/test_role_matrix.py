"""Every API endpoint in the OpenAPI schema, for every kind of caller: the anonymous are
refused, an account without a role is refused, a viewer may read and not write, and each
write is allowed to the roles the matrix names and refused to the others."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from accounts import roles

pytestmark = pytest.mark.django_db

# Writes and the roles allowed to make them (admin holds every role). A write not listed
# here fails the test: a new endpoint must say who may use it.
WRITES: dict[tuple[str, str], set[str]] = {
    ("post", "/api/v1/alert-sources/"): set(),
    ("post", "/api/v1/alert-sources/{slug}/rotate/"): set(),
    ("post", "/api/v1/approvals/{id}/decision/"): {roles.APPROVER},
    ("post", "/api/v1/approvals/bulk-decision/"): {roles.APPROVER},
    ("post", "/api/v1/audit/digests/"): {roles.AUDITOR},
    ("post", "/api/v1/audit/legal-holds/"): {roles.AUDITOR},
    ("post", "/api/v1/audit/legal-holds/{run_id}/release/"): {roles.AUDITOR},
    ("post", "/api/v1/audit/verify/"): {roles.AUDITOR},
    ("post", "/api/v1/connections/"): set(),
    ("patch", "/api/v1/connections/{name}/"): set(),
    ("delete", "/api/v1/connections/{name}/"): set(),
    ("post", "/api/v1/connections/{name}/test/"): {roles.AUTHOR},
    ("post", "/api/v1/playbooks/"): {roles.AUTHOR},
    ("post", "/api/v1/playbooks/{name}/versions/"): {roles.AUTHOR},
    ("post", "/api/v1/playbooks/{name}/versions/{number}/publish/"): {roles.AUTHOR},
    # Validating stores nothing: anyone who may read playbooks may check a definition.
    ("post", "/api/v1/playbooks/validate/"): set(roles.ROLES),
    ("post", "/api/v1/playbooks/{name}/versions/{number}/test/"): set(roles.ROLES),
    ("post", "/api/v1/runs/"): {roles.ANALYST},
    ("post", "/api/v1/runs/{id}/cancel/"): {roles.ANALYST},
    ("post", "/api/v1/runs/{id}/steps/{step_id}/retry/"): {roles.ANALYST},
    ("post", "/api/v1/runs/{id}/resume/"): {roles.ANALYST},
    ("post", "/api/v1/runs/{id}/rerun/"): {roles.ANALYST},
    ("post", "/api/v1/playbooks/{name}/replay/"): {roles.ANALYST},
}
# Reads that need more than a role: the audit trail and evidence are for some roles only.
READS: dict[str, set[str]] = {
    "/api/v1/audit/": {roles.AUDITOR},
    "/api/v1/audit/{id}/": {roles.AUDITOR},
    "/api/v1/audit/digests/": {roles.AUDITOR},
    "/api/v1/audit/digests/{seq}/": {roles.AUDITOR},
    "/api/v1/audit/export/": {roles.AUDITOR},
    "/api/v1/audit/legal-holds/": {roles.AUDITOR},
    "/api/v1/audit/legal-holds/{run_id}/": {roles.AUDITOR},
    "/api/v1/audit/public-key/": {roles.AUDITOR},
    "/api/v1/audit/tombstones/": {roles.AUDITOR},
    "/api/v1/artifacts/{id}/content/": {roles.ANALYST, roles.AUDITOR},
    "/api/v1/runs/{id}/evidence/": {roles.ANALYST, roles.AUDITOR},
}


def operations() -> list[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted((method, path) for path, item in schema["paths"].items() for method in item)


def concrete(path: str) -> str:
    return re.sub(
        r"\{[^}]+\}", lambda m: "1" if m.group(0) in ("{id}", "{number}", "{seq}") else "x", path
    )


def client(*groups: str) -> APIClient:
    user = User.objects.create_user(username="u-" + "-".join(groups or ("none",)))
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    api = APIClient()
    api.force_authenticate(user)
    return api


def call(api: APIClient, method: str, path: str) -> Any:
    return getattr(api, method)(concrete(path), {}, format="json")


def test_every_write_is_in_the_matrix() -> None:
    writes = {(m, p) for m, p in operations() if m not in ("get", "head", "options")}
    assert writes == set(WRITES)


@pytest.mark.parametrize(("method", "path"), operations())
def test_the_anonymous_and_accounts_without_a_role_are_refused(method: str, path: str) -> None:
    assert call(APIClient(), method, path).status_code in (401, 403)
    assert call(client(), method, path).status_code == 403


@pytest.mark.parametrize(("method", "path"), operations())
def test_each_role_may_do_what_the_matrix_says(method: str, path: str) -> None:
    for role in roles.ROLES:
        response = call(client(role), method, path)
        if method == "get":
            allowed = role == roles.ADMIN or role in READS.get(path, set(roles.ROLES))
        else:
            allowed = role == roles.ADMIN or role in WRITES[(method, path)]
        refused = response.status_code == 403
        assert refused != allowed, f"{role} {method.upper()} {path}: {response.status_code}"
