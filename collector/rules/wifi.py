"""Per-device Wi-Fi rules: weak signal, unstable connection — on the school network.

Only readings taken on the school network count (`on_school_network` true): a home
or phone network says nothing the school can act on, and the agent reports no
detail about it anyway. Off the school network there is no verdict, so an open
condition neither clears nor grows while the laptop is at home.

Category "hardware": one laptop with poor Wi-Fi where its classmates are fine is a
laptop problem (antenna, card, driver) for the level-1 technician to check. When
many laptops on one access point degrade together, the access-point correlator
(network.py) raises one "network" finding instead and suppresses these.
"""

from __future__ import annotations

from typing import Any, ClassVar

from collector.alerts.model import Severity, Subject
from collector.rules.base import IDLE, SampleRule, Verdict, device_key, fr
from collector.rules.config import RulesConfig
from collector.rules.state import DeviceState
from collector.samples import Sample, Wifi


def wifi_evidence(wifi: Wifi) -> dict[str, Any]:
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


def school_wifi(sample: Sample) -> Wifi | None:
    """The sample's Wi-Fi reading if it was taken connected to the school network."""
    wifi = sample.wifi
    if wifi is None or not wifi.connected or wifi.on_school_network is not True:
        return None
    return wifi


class _WifiRule(SampleRule):
    subject: ClassVar[Subject] = "device"

    def _verdicts(self, state: DeviceState, sample: Sample) -> list[tuple[str, Verdict | None]]:
        key = device_key(state.school, state.device, self.name)
        wifi = school_wifi(sample)
        return [(key, None if wifi is None else self._judge(wifi, state.is_active(key)))]

    def _judge(self, wifi: Wifi, was_active: bool) -> Verdict | None:
        raise NotImplementedError


class WifiWeak(_WifiRule):
    name = "wifi_weak"
    # A laptop moves: informational until the engine sees it last min_duration_s.
    severity: ClassVar[Severity] = "info"

    def __init__(self, config: RulesConfig) -> None:
        super().__init__(config)
        self.max_sample_age_s = config.wifi_weak.max_sample_age_s

    def _judge(self, wifi: Wifi, was_active: bool) -> Verdict | None:
        cfg = self.config.wifi_weak
        rssi = wifi.rssi_dbm
        if rssi is None:
            return None
        limit = cfg.clear_at_dbm if was_active else cfg.rssi_below_dbm
        if rssi >= limit and not was_active:
            return IDLE
        evidence = wifi_evidence(wifi) | {"threshold_dbm": cfg.rssi_below_dbm}
        if rssi >= limit:
            return Verdict(False, f"Signal Wi-Fi revenu à {fr(rssi)} dBm", evidence=evidence)
        return Verdict(
            True,
            f"Wi-Fi faible : {fr(rssi)} dBm (seuil {fr(cfg.rssi_below_dbm)} dBm) "
            "sur le réseau de l'établissement",
            "Comparer avec un autre ordinateur au même endroit ; si lui capte bien, "
            "vérifier la carte et les antennes Wi-Fi de celui-ci",
            evidence,
        )


class WifiUnstable(_WifiRule):
    name = "wifi_unstable"

    def __init__(self, config: RulesConfig) -> None:
        super().__init__(config)
        self.max_sample_age_s = config.wifi_unstable.max_sample_age_s

    def _judge(self, wifi: Wifi, was_active: bool) -> Verdict | None:
        cfg = self.config.wifi_unstable
        count = wifi.disconnects
        if count is None:
            return None
        limit = cfg.clear_below if was_active else cfg.disconnects_at_or_above
        if count < limit and not was_active:
            return IDLE
        evidence = wifi_evidence(wifi) | {"threshold_disconnects": cfg.disconnects_at_or_above}
        if count < limit:
            return Verdict(
                False, f"Wi-Fi de nouveau stable ({count} déconnexion(s))", evidence=evidence
            )
        return Verdict(
            True,
            f"Wi-Fi instable : {count} déconnexions sur le réseau de l'établissement "
            f"(seuil {cfg.disconnects_at_or_above})",
            "Mettre à jour le pilote Wi-Fi et comparer avec un autre ordinateur dans la "
            "même salle ; si lui reste connecté, escalader au prestataire matériel",
            evidence,
        )
