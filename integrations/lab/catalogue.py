"""Every vendor simulator the lab serves, by the path prefix it is served under."""

from __future__ import annotations

from collections.abc import Callable

from integrations.abuseipdb.simulator import AbuseIPDBSimulator
from integrations.awx.simulator import AWXSimulator
from integrations.crowdstrike.simulator import CrowdStrikeSimulator
from integrations.defender.simulator import DefenderSimulator
from integrations.jira.simulator import JiraSimulator
from integrations.lab.simulator import Simulator
from integrations.pagerduty.simulator import PagerDutySimulator
from integrations.sentinelone.simulator import SentinelOneSimulator
from integrations.servicenow.simulator import ServiceNowSimulator
from integrations.slack.simulator import SlackSimulator
from integrations.teams.simulator import TeamsSimulator
from integrations.virustotal.simulator import VirusTotalSimulator

SIMULATORS: dict[str, Callable[[], Simulator]] = {
    "crowdstrike": CrowdStrikeSimulator,
    "slack": SlackSimulator,
    "jira": JiraSimulator,
    "virustotal": VirusTotalSimulator,
    "abuseipdb": AbuseIPDBSimulator,
    "pagerduty": PagerDutySimulator,
    "defender": DefenderSimulator,
    "sentinelone": SentinelOneSimulator,
    "servicenow": ServiceNowSimulator,
    "awx": AWXSimulator,
    "teams": TeamsSimulator,
}
