"""The UI's pages (namespace "web"); the approval pages live with approvals (core.approvals)."""

from django.urls import path

from web.views import alerts, audit, dashboard, integrations, playbooks, runs

app_name = "web"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("alerts/", alerts.alert_list, name="alerts"),
    path("alerts/<int:pk>/", alerts.alert_detail, name="alert"),
    path("runs/", runs.run_list, name="runs"),
    path("runs/new/", runs.run_start, name="run-start"),
    path("runs/<int:pk>/", runs.run_detail, name="run"),
    path("runs/<int:pk>/live/", runs.run_live, name="run-live"),
    path("runs/<int:pk>/graph.json", runs.run_graph_json, name="run-graph"),
    path("runs/<int:pk>/<slug:action>/", runs.run_action, name="run-action"),
    path("playbooks/", playbooks.playbook_list, name="playbooks"),
    path("playbooks/new/", playbooks.editor, name="playbook-new"),
    path("playbooks/check/", playbooks.editor_check, name="playbook-check"),
    path("playbooks/<slug:name>/", playbooks.playbook_detail, name="playbook"),
    path("playbooks/<slug:name>/edit/", playbooks.editor, name="playbook-edit"),
    path("playbooks/<slug:name>/diff/", playbooks.version_diff, name="playbook-diff"),
    path("playbooks/<slug:name>/v<int:number>/", playbooks.version_detail, name="version"),
    path(
        "playbooks/<slug:name>/v<int:number>/publish/",
        playbooks.version_publish,
        name="version-publish",
    ),
    path("integrations/", integrations.integration_list, name="integrations"),
    path("integrations/<slug:name>/test/", integrations.connection_test, name="connection-test"),
    path("audit/", audit.audit_review, name="audit"),
    path("audit/verify/", audit.audit_verify, name="audit-verify"),
    path("audit/holds/", audit.legal_hold, name="legal-hold"),
]
