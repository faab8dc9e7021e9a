"""Per-device Wi-Fi rules: weak signal, unstable connection — on the school network,
judged per completed telemetry window.

A laptop's school-network readings of one window (its `Tally`, tally.py) give one
verdict per rule once the window is complete, that is once the access-point verdict
for the same time is final (collector.alerting.school): the condition holds when
most readings of the window show it; while it holds, the clear thresholds are used
(hysteresis). Off the school network there is no verdict, so an open condition
neither clears nor grows while the laptop is at home.

Category "hardware": one laptop with poor Wi-Fi where its classmates are fine is a
laptop problem (antenna, card, driver) for the level-1 technician to check. When
many laptops on one access point degrade together, network.py raises one "network"
finding instead, and the laptops it covers get no Wi-Fi verdict of their own for
that window: their active conditions clear (`covered`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from collector.alerts.model import Finding, Severity, Subject
from collector.rules.base import IDLE, RuleBase, Verdict, device_key, fr
from collector.rules.state import DeviceState
from collector.rules.tally import Tally

DEVICE_WIFI_RULES = ("wifi_weak", "wifi_unstable")
COVERED = "couvert par l'alerte réseau du point d'accès ou de l'établissement"


def wifi_evidence(wifi: Any) -> dict[str, Any]:
    """The latest reading's fields (a contract `Wifi`, or one restored from storage)."""
    return {
        "bssid_hash": wifi.bssid_hash,
        "ssid": wifi.ssid,
        "rssi_dbm": wifi.rssi_dbm,
        "rssi_min_dbm": wifi.rssi_min_dbm,
        "signal_pct": wifi.signal_pct,
        "disconnects": wifi.disconnects,
        "connected_s": wifi.connected_s,
        "band_ghz": wifi.band_ghz,
        "channel": wifi.channel,
        "radio": wifi.radio,
    }


def window_evidence(tally: Tally, start: datetime, window_s: int) -> dict[str, Any]:
    evidence = wifi_evidence(tally.last) if tally.last is not None else {}
    mean = tally.mean_rssi_dbm
    return evidence | {
        "window_start": start.isoformat(),
        "window_s": window_s,
        "readings": tally.readings,
        "weak_readings": tally.weak,
        "unstable_readings": tally.unstable,
        "mean_rssi_dbm": None if mean is None else round(mean, 1),
        "min_rssi_dbm": tally.rssi_min,
        "disconnects_total": tally.disconnects,
    }


class WindowRule(RuleBase):
    subject: ClassVar[Subject] = "device"

    def judge_window(
        self, state: DeviceState, tally: Tally, start: datetime, covered: bool
    ) -> Finding | None:
        """The finding for one completed window of the device (None: nothing to say)."""
        key = device_key(state.school, state.device, self.name)
        active = state.is_active(key)
        if covered:
            if not active:
                return None
            verdict = Verdict(False, COVERED, evidence={"covered": True})
            return self.finding(state, start, key, verdict)
        judged = self._judge(tally, active)
        if judged is None or not (judged.holds or active):
            return None
        window_s = self.config.network.window_s
        evidence = window_evidence(tally, start, window_s) | (judged.evidence or {})
        verdict = Verdict(judged.holds, judged.summary, judged.action, evidence)
        return self.finding(state, start, key, verdict)

    def _judge(self, tally: Tally, was_active: bool) -> Verdict | None:
        raise NotImplementedError


class WifiWeak(WindowRule):
    name = "wifi_weak"
    # A laptop moves: informational until the engine sees it last min_duration_s.
    severity: ClassVar[Severity] = "info"

    def _judge(self, tally: Tally, was_active: bool) -> Verdict | None:
        cfg = self.config.wifi_weak
        if not tally.rssi_readings:
            return None
        weak = tally.weak_hold if was_active else tally.weak
        holds = 2 * weak > tally.rssi_readings
        if not holds and not was_active:
            return IDLE
        mean = fr(tally.mean_rssi_dbm or 0.0)
        evidence = {"threshold_dbm": cfg.rssi_below_dbm}
        if not holds:
            return Verdict(False, f"Signal Wi-Fi revenu à {mean} dBm en moyenne", evidence=evidence)
        return Verdict(
            True,
            f"Wi-Fi faible : {mean} dBm en moyenne (seuil {fr(cfg.rssi_below_dbm)} dBm) "
            "sur le réseau de l'établissement",
            "Comparer avec un autre ordinateur au même endroit ; si lui capte bien, "
            "vérifier la carte et les antennes Wi-Fi de celui-ci",
            evidence,
        )


class WifiUnstable(WindowRule):
    name = "wifi_unstable"

    def _judge(self, tally: Tally, was_active: bool) -> Verdict | None:
        cfg = self.config.wifi_unstable
        if not tally.disconnect_readings:
            return None
        unstable = tally.unstable_hold if was_active else tally.unstable
        holds = 2 * unstable > tally.disconnect_readings
        if not holds and not was_active:
            return IDLE
        evidence = {"threshold_disconnects": cfg.disconnects_at_or_above}
        count = tally.disconnects
        if not holds:
            return Verdict(
                False, f"Wi-Fi de nouveau stable ({count} déconnexion(s))", evidence=evidence
            )
        return Verdict(
            True,
            f"Wi-Fi instable : {count} déconnexions en {tally.readings} rapports sur le "
            f"réseau de l'établissement (seuil {cfg.disconnects_at_or_above} par rapport)",
            "Mettre à jour le pilote Wi-Fi et comparer avec un autre ordinateur dans la "
            "même salle ; si lui reste connecté, escalader au prestataire matériel",
            evidence,
        )
