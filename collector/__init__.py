"""Lordi collector: MQTT telemetry in, validated time series out."""
