"""The collector's alerting: telemetry to alerts, in sample time.

Parts, by name: `evaluation` (a device's samples through the per-sample rules),
`school` (a school's telemetry per window and day, judged once complete: access
points, laptops' Wi-Fi, silence), `clock` (the connected clock that tells when
telemetry is complete: the only use of the collector's clock in the verdicts),
`persistence` (school state documents), `feed` (alert and forecast lines for the
time series), `core` (the wiring: `Alerting`).
The rules themselves are pure (collector.rules); the lifecycle is the engine's
(collector.alerts.engine).
"""

from collector.alerting.core import Alerting

__all__ = ["Alerting"]
