"""Lordi agent: battery and Wi-Fi telemetry from a school laptop."""

__version__ = "0.1.0"
