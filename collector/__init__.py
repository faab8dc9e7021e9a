"""Lordi collector: MQTT telemetry in, validated time series out."""

from collector.compiled import activate

# Compiled hot modules (mypyc), or all from their .py: decided before any is imported.
BUILD = activate()
