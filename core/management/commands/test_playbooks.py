"""Run playbook tests: a stored playbook's version (its latest by default, drafts
included: tests are for before publishing), every playbook's, or definition files'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.engine.test_runner import TestResult
from core.playbook_testing import run_definition_tests
from playbooks.definition import DefinitionSyntaxError, load_definition_text
from playbooks.models import Playbook
from playbooks.versions import check_definition


class Command(BaseCommand):
    help = (
        "Run the tests: of a playbook's latest version (or --playbook-version N), of every "
        "playbook's, or of definition files (--file). Exit 1 if any test fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="a playbook's name (default: every playbook)")
        parser.add_argument("--playbook-version", type=int, dest="number",
                            help="the version to test (default: its latest)")  # fmt: skip
        parser.add_argument("--file", action="append", default=[], dest="files",
                            help="a definition file to test instead (repeatable)")  # fmt: skip

    def handle(self, *args: Any, name: str | None, number: int | None, files: list[str],
               **options: Any) -> None:  # fmt: skip
        targets = _files(files) if files else _stored(name, number)
        failed = total = 0
        for label, definition in targets:
            results = run_definition_tests(definition)
            if not results:
                self.stdout.write(f"{label}: no tests")
            for result in results:
                total += 1
                failed += not result.passed
                self._report(label, result)
        self.stdout.write(f"{total - failed} of {total} tests passed")
        if failed:
            raise CommandError(f"{failed} of {total} tests failed")

    def _report(self, label: str, result: TestResult) -> None:
        if result.passed:
            self.stdout.write(self.style.SUCCESS(f"PASS {label}: {result.name}"))
            return
        self.stdout.write(self.style.ERROR(f"FAIL {label}: {result.name}"))
        for failure in result.failures:
            self.stdout.write(f"  - {failure}")


def _stored(name: str | None, number: int | None) -> list[tuple[str, dict[str, Any]]]:
    if number is not None and name is None:
        raise CommandError("--playbook-version needs a playbook name")
    playbooks = Playbook.objects.order_by("name")
    if name is not None:
        playbooks = playbooks.filter(name=name)
        if not playbooks.exists():
            raise CommandError(f"no playbook named {name!r}")
    targets = []
    for playbook in playbooks:
        versions = playbook.versions.order_by("-number")
        version = versions.filter(number=number).first() if number is not None else versions.first()
        if version is None:
            raise CommandError(f"playbook {playbook.name} has no version {number}")
        targets.append((f"{playbook.name} v{version.number}", version.definition))
    return targets


def _files(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    targets = []
    for raw in paths:
        try:
            text = Path(raw).read_text(encoding="utf-8")
            definition = load_definition_text(text)
        except (OSError, UnicodeDecodeError, DefinitionSyntaxError) as exc:
            raise CommandError(f"{raw}: {exc}") from None
        problems = check_definition(text)
        if problems:
            where = f"{problems[0].path}: " if problems[0].path else ""
            raise CommandError(f"{raw}: invalid definition: {where}{problems[0].message}")
        targets.append((raw, definition))
    return targets
