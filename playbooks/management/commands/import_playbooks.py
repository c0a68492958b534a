"""Import playbook definitions from YAML/JSON files (default: playbooks/library/*.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from playbooks.versions import DefinitionInvalid, import_definition

ACTOR = "system:cli"
DEFINITION_SUFFIXES = (".yaml", ".yml", ".json")


def _files(paths: list[str]) -> list[Path]:
    if not paths:
        return sorted((Path(settings.BASE_DIR) / "playbooks" / "library").glob("*.yaml"))
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in DEFINITION_SUFFIXES))
        else:
            found.append(path)
    return found


class Command(BaseCommand):
    help = (
        "Create each file's playbook, or a new version when its content changed; "
        "with --publish, make that version active. Exit 1 if any file is invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help="definition files or directories")
        parser.add_argument(
            "--publish", action="store_true", help="publish each imported version if not active"
        )

    def handle(self, *args: Any, paths: list[str], publish: bool, **options: Any) -> None:
        files = _files(paths)
        failed = 0
        for path in files:
            try:
                result = import_definition(
                    definition=path.read_text(encoding="utf-8"), publish=publish, actor=ACTOR
                )
            except (OSError, UnicodeDecodeError) as exc:
                failed += 1
                self.stderr.write(f"{path}: cannot read: {exc}")
                continue
            except DefinitionInvalid as exc:
                failed += 1
                self.stderr.write(f"{path}: invalid, nothing stored")
                for problem in exc.problems:
                    where = f"{problem.path}: " if problem.path else ""
                    self.stderr.write(f"  {where}{problem.message}")
                continue
            version = result.version
            line = f"{path}: {version.playbook.name} v{version.number} {result.outcome}"
            if result.published:
                line += ", published"
            elif publish:
                line += ", already active"
            self.stdout.write(line)
        if failed:
            raise CommandError(f"{failed} of {len(files)} files were invalid", returncode=1)
        if not files:
            self.stdout.write("no playbook files found")
