"""Approvals around the engine: their records, decisions, links, notifications, budgets."""
