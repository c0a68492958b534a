"""Playbooks: the list, a playbook's versions, a version, a diff, and the editor (validate
as you type, preview the graph, save a draft, publish)."""

from __future__ import annotations

import contextlib
from typing import Any

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import roles
from accounts.permissions import actor_for
from playbooks.definition import DefinitionSyntaxError, load_definition_text
from playbooks.models import Playbook, PlaybookVersion
from playbooks.schema import playbook_json_schema
from playbooks.validation import Problem
from playbooks.versions import (
    DefinitionInvalid,
    check_definition,
    create_playbook,
    create_version,
    publish_problems,
    publish_version,
)
from web.access import can, needs, page
from web.diff import graph_diff, text_diff, version_text
from web.graph import graph_of

NEW_PLAYBOOK = """name: my-playbook
title: My playbook
steps:
  - id: hello
    action: util.echo
    with: {message: "hello"}
"""


@page
def playbook_list(request: HttpRequest) -> HttpResponse:
    rows = []
    # The versions' numbers and states only, not every definition of every playbook.
    listed = PlaybookVersion.objects.only("id", "playbook_id", "number", "state")
    playbooks = Playbook.objects.prefetch_related(Prefetch("versions", queryset=listed))
    for playbook in playbooks.order_by("name"):
        versions = list(playbook.versions.all())
        active = next((v for v in versions if v.state == PlaybookVersion.State.PUBLISHED), None)
        rows.append({"playbook": playbook, "active": active, "count": len(versions),
                     "latest": max((v.number for v in versions), default=None)})  # fmt: skip
    return render(request, "web/playbooks.html", {
        "rows": rows, "can_author": can(request, roles.AUTHOR),
    })  # fmt: skip


def _playbook(name: str) -> Playbook:
    return get_object_or_404(Playbook, name=name)


def _version(playbook: Playbook, number: int) -> PlaybookVersion:
    return get_object_or_404(
        PlaybookVersion.objects.select_related("author", "published_by"),
        playbook=playbook, number=number,
    )  # fmt: skip


@page
def playbook_detail(request: HttpRequest, name: str) -> HttpResponse:
    playbook = _playbook(name)
    listed = playbook.versions.select_related("author", "published_by")
    versions = list(listed.defer("definition", "source_text").order_by("-number"))
    shown = next((v for v in versions if v.state == PlaybookVersion.State.PUBLISHED), None)
    shown = shown or (versions[0] if versions else None)
    if shown is not None:
        shown = PlaybookVersion.objects.get(pk=shown.pk)  # the one definition drawn
    return render(request, "web/playbook.html", {
        "playbook": playbook, "versions": versions, "shown": shown,
        "graph": graph_of(shown.definition) if shown else None,
        "can_author": can(request, roles.AUTHOR),
        "can_start": can(request, roles.ANALYST) and shown is not None
        and shown.state == PlaybookVersion.State.PUBLISHED,
    })  # fmt: skip


@page
def version_detail(request: HttpRequest, name: str, number: int) -> HttpResponse:
    playbook = _playbook(name)
    version = _version(playbook, number)
    return render(request, "web/version.html", {
        "playbook": playbook, "version": version, "text": version_text(version),
        "graph": graph_of(version.definition),
        "problems": publish_problems(version.definition)
        if version.state == PlaybookVersion.State.DRAFT else [],
        "can_author": can(request, roles.AUTHOR),
    })  # fmt: skip


@page
def version_diff(request: HttpRequest, name: str) -> HttpResponse:
    playbook = _playbook(name)
    numbers = list(playbook.versions.order_by("number").values_list("number", flat=True))
    if len(numbers) < 2:
        messages.info(request, f"{name} has one version: there is nothing to compare yet.")
        return redirect("web:playbook", name=name)
    new_number = _int(request.GET.get("to"), numbers[-1])
    earlier = [n for n in numbers if n < new_number]
    old_number = _int(request.GET.get("from"), earlier[-1] if earlier else numbers[0])
    old, new = _version(playbook, old_number), _version(playbook, new_number)
    return render(request, "web/diff.html", {
        "playbook": playbook, "old": old, "new": new, "numbers": numbers,
        "lines": text_diff(version_text(old), version_text(new), f"v{old.number}", f"v{new.number}"),
        "graph": graph_diff(old.definition, new.definition),
    })  # fmt: skip


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


@needs(roles.AUTHOR)
def editor(request: HttpRequest, name: str | None = None) -> HttpResponse:
    """Write a new version (or a new playbook); saving stores a draft."""
    playbook = _playbook(name) if name else None
    if request.method == "POST":
        text = request.POST.get("definition", "")
        actor = actor_for(request.user)
        try:
            if playbook is None:
                version = create_playbook(definition=text, user=request.user, actor=actor)
            else:
                version = create_version(playbook=playbook, definition=text, user=request.user,
                                         actor=actor)  # fmt: skip
        except DefinitionInvalid as invalid:
            return render(request, "web/editor.html", {
                **_editor_context(playbook, text), "problems": invalid.problems,
            }, status=400)  # fmt: skip
        messages.success(request, f"Draft v{version.number} of {version.playbook.name} saved.")
        return redirect("web:version", name=version.playbook.name, number=version.number)
    if playbook is None:
        text = NEW_PLAYBOOK
    else:
        base = playbook.versions.order_by("-number").first()
        text = version_text(base) if base else NEW_PLAYBOOK
    return render(request, "web/editor.html", _editor_context(playbook, text))


def _editor_context(playbook: Playbook | None, text: str) -> dict[str, Any]:
    return {"playbook": playbook, "text": text, "hints": schema_hints(), **_checked(text)}


@page
@require_POST
def editor_check(request: HttpRequest) -> HttpResponse:
    """Validate the editor's text and preview its graph (htmx, as the author types)."""
    return render(request, "web/_editor_check.html", _checked(request.POST.get("definition", "")))


def _checked(text: str) -> dict[str, Any]:
    problems: list[Problem] = check_definition(text)
    graph = None
    with contextlib.suppress(DefinitionSyntaxError):
        graph = graph_of(load_definition_text(text))
    return {"problems": problems, "preview": graph}


def schema_hints() -> list[dict[str, str]]:
    """The definition's top-level and step keys with their descriptions, from the schema."""
    schema = playbook_json_schema()
    defs = schema.get("$defs", {})
    hints = []
    for where, properties in (("playbook", schema.get("properties", {})),
                              ("step", defs.get("Step", {}).get("properties", {}))):  # fmt: skip
        for key, spec in properties.items():
            hints.append({"where": where, "key": key,
                          "about": str(spec.get("description") or spec.get("title") or "")})  # fmt: skip
    return hints


@require_POST
@needs(roles.AUTHOR)
def version_publish(request: HttpRequest, name: str, number: int) -> HttpResponse:
    version = _version(_playbook(name), number)
    try:
        publish_version(version=version, user=request.user, actor=actor_for(request.user))
    except DefinitionInvalid as invalid:
        for problem in invalid.problems:
            where = f"{problem.path}: " if problem.path else ""
            messages.error(request, f"Not published: {where}{problem.message}")
        return redirect("web:version", name=name, number=number)
    messages.success(request, f"v{number} of {name} is published: new runs use it.")
    return redirect("web:playbook", name=name)
