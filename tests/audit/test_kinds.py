"""audit.kinds lists every kind of event the code writes, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from audit.kinds import KINDS
from core.engine.state import RunStatus

ROOT = Path(__file__).resolve().parents[2]
APPS = ("alerts", "core", "playbooks", "integrations", "artifacts", "audit", "accounts", "common")
# A kind named where an event is written: a fact, kind="…", or a failure's kind.
LITERAL = re.compile(
    r"""(?:\bfact\(\s*|\bkind\s*=\s*|\bkind\s*:\s*str\s*=\s*)"([a-z_]+\.[a-z_]+)\""""
)
# Kinds the code builds from a value rather than names in full.
ATTEMPT_OUTCOMES = ("succeeded", "failed", "waiting", "held")
APPROVAL_OUTCOMES = ("approved", "rejected")
ADMIN_NOUNS = ("budget", "chat_identity")  # AuditedAdmin subclasses' audit_kind
ADMIN_VERBS = ("created", "changed", "deleted")


def literals() -> set[str]:
    found = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts or path.name == "kinds.py":
                continue
            text = path.read_text()
            found.update(LITERAL.findall(text))
            # kind = "step.polling" if … else "step.retrying"; kind="…" if error is None else "…"
            found.update(
                re.findall(r'\bkind\s*=\s*"[a-z_.]+" if [^\n]+ else "([a-z_]+\.[a-z_]+)"', text)
            )
            found.update(re.findall(r'\bkind\s*=\s*"([a-z_]+\.[a-z_]+)" if ', text))
            # b.fact("step.succeeded" if … else "compensation.succeeded", key)
            found.update(re.findall(r'"((?:step|compensation)\.[a-z_]+)" if key\.phase', text))
            found.update(re.findall(r'else "(compensation\.[a-z_]+)"', text))
    return found


def built() -> set[str]:
    kinds = {f"run.{status.value}" for status in RunStatus}
    kinds |= {f"attempt.{outcome}" for outcome in ATTEMPT_OUTCOMES}
    kinds |= {f"approval.{outcome}" for outcome in APPROVAL_OUTCOMES}
    kinds |= {f"{noun}.{verb}" for noun in ADMIN_NOUNS for verb in ADMIN_VERBS}
    return kinds


def test_every_kind_the_code_writes_is_listed() -> None:
    missing = (literals() | built()) - set(KINDS)
    assert not missing, f"write these into audit.kinds.KINDS: {sorted(missing)}"


def test_every_listed_kind_is_written_somewhere() -> None:
    unused = set(KINDS) - literals() - built()
    assert not unused, f"no code writes these: {sorted(unused)}"


def test_the_dynamic_families_are_what_the_code_builds() -> None:
    from audit.audited_admin import AuditedAdmin
    from core import admin as core_admin

    nouns = {cls.audit_kind for cls in vars(core_admin).values()
             if isinstance(cls, type) and issubclass(cls, AuditedAdmin) and cls is not AuditedAdmin}  # fmt: skip
    assert nouns == set(ADMIN_NOUNS)
    source = (ROOT / "audit" / "audited_admin.py").read_text()
    assert set(re.findall(r'"(created|changed|deleted)"', source)) == set(ADMIN_VERBS)
    outcomes = (ROOT / "core" / "attempt_results.py").read_text()
    for outcome in ATTEMPT_OUTCOMES:
        assert f'"{outcome}"' in outcomes


def test_each_kind_says_where_it_goes_and_what_it_means() -> None:
    for name, kind in KINDS.items():
        assert kind.stream in ("run", "playbook", "system"), name
        assert kind.about, name
        assert len(set(kind.fields)) == len(kind.fields), name
        if kind.step:
            assert kind.stream == "run", name
