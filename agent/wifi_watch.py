"""Summarise the Wi-Fi link between two reports: weakest signal, drops, time connected.

The agent looks at the link more often than it reports (every 30 s by default);
each look is `observe()`, each report takes `summary()` and starts a new window.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.model import WifiReading


@dataclass
class WifiWatch:
    rssi_min_dbm: float | None = None
    disconnects: int = 0
    connected_s: float = 0.0
    _last_t: float | None = None
    _last_connected: bool | None = None

    def observe(self, reading: WifiReading | None, t: float) -> None:
        """One look at the link at monotonic time `t` (seconds)."""
        if reading is not None and reading.ssid_hidden_by_os and not reading.connected:
            return  # the OS hides the link state (location consent): unknown, not a drop
        connected = bool(reading and reading.connected)
        if self._last_t is not None and self._last_connected:
            self.connected_s += max(0.0, t - self._last_t)
        if self._last_connected and not connected:
            self.disconnects += 1
        rssi = reading.rssi_dbm if (connected and reading is not None) else None
        if rssi is not None and (self.rssi_min_dbm is None or rssi < self.rssi_min_dbm):
            self.rssi_min_dbm = rssi
        self._last_t, self._last_connected = t, connected

    def summary(self) -> dict[str, float | int | None]:
        """The window's figures; the next window starts now."""
        out: dict[str, float | int | None] = {
            "rssi_min_dbm": self.rssi_min_dbm,
            "disconnects": self.disconnects,
            "connected_s": round(self.connected_s, 1),
        }
        self.rssi_min_dbm, self.disconnects, self.connected_s = None, 0, 0.0
        return out
