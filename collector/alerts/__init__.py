"""Alerts: findings from the rules become alerts with a lifecycle, stored and routed."""
