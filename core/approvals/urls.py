"""Pages for deciding approvals, and Slack's interactivity endpoint."""

from django.urls import path

from core.approvals import slack, web

urlpatterns = [
    path("approvals/", web.inbox, name="approval-inbox"),
    path("approvals/<int:pk>/", web.approval_page, name="approval-page"),
    path("approvals/link/<str:token>/", web.link_page, name="approval-link"),
    path("api/v1/integrations/slack/interactions/", slack.interactions, name="slack-interactions"),
]
