"""Export playbooks as YAML files, one per playbook (and per version with --all-versions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from playbooks.models import Playbook, PlaybookVersion
from playbooks.versions import active_version, latest_version


def definition_text(version: PlaybookVersion) -> str:
    """The text a version was written as, else its definition dumped as YAML."""
    if version.source_text:
        return (
            version.source_text
            if version.source_text.endswith("\n")
            else version.source_text + "\n"
        )
    return yaml.safe_dump(version.definition, sort_keys=False, allow_unicode=True)


class Command(BaseCommand):
    help = (
        "Write <name>.yaml (the active version, else the latest) for each playbook; "
        "with --all-versions also <name>/v<n>.yaml for every version."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="playbooks to export (default: all)")
        parser.add_argument(
            "--dir",
            dest="directory",
            default=str(Path(settings.BASE_DIR) / "playbooks" / "library"),
            help="output directory (default: playbooks/library)",
        )
        parser.add_argument("--all-versions", action="store_true", help="also write every version")

    def handle(
        self, *args: Any, names: list[str], directory: str, all_versions: bool, **options: Any
    ) -> None:
        out = Path(directory)
        playbooks = Playbook.objects.all()
        if names:
            playbooks = playbooks.filter(name__in=names)
            missing = set(names) - set(playbooks.values_list("name", flat=True))
            if missing:
                raise CommandError(f"no such playbook: {', '.join(sorted(missing))}")
        out.mkdir(parents=True, exist_ok=True)
        for playbook in playbooks:
            current = active_version(playbook) or latest_version(playbook)
            if current is None:
                continue
            target = out / f"{playbook.name}.yaml"
            target.write_text(definition_text(current), encoding="utf-8")
            self.stdout.write(f"{target}: {playbook.name} v{current.number} ({current.state})")
            if all_versions:
                (out / playbook.name).mkdir(exist_ok=True)
                for version in playbook.versions.all():
                    path = out / playbook.name / f"v{version.number}.yaml"
                    path.write_text(definition_text(version), encoding="utf-8")
                    self.stdout.write(
                        f"{path}: {playbook.name} v{version.number} ({version.state})"
                    )
