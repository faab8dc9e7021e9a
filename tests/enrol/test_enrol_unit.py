"""The enrolment service's systemd unit (provisioning/enrol/lordi-enrol.service)."""

from __future__ import annotations

import shlex
from pathlib import Path

from lordi.cli import main as lordi_main
from tests.units import analyze_unit, unit_settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "provisioning" / "enrol" / "lordi-enrol.service"
EXEC = "/opt/lordi/venv/bin/lordi"


def test_unit_runs_the_enrolment_service_with_two_capabilities(tmp_path: Path) -> None:
    service = unit_settings(UNIT)["Service"]
    argv = shlex.split(service["ExecStart"][0])
    assert argv[:3] == [EXEC, "enrol", "serve"]
    assert argv[3:] == ["--config", "/etc/lordi/enrol.toml"]
    assert service["CapabilityBoundingSet"] == ["CAP_CHOWN CAP_KILL"]
    assert service["ReadWritePaths"] == ["/etc/mosquitto/lordi"]
    assert service["ProtectSystem"] == ["strict"]
    analyze_unit(UNIT, EXEC, tmp_path)


def test_sample_configuration_loads(tmp_path: Path) -> None:
    """provisioning/enrol/enrol.toml with the service's own loader, and the CLI's
    error for a wrong key names the file, the key and the value."""
    from lordi.enrol.settings import EnrolConfigError, load_settings  # noqa: PLC0415

    sample = ROOT / "provisioning" / "enrol" / "enrol.toml"
    settings = load_settings(sample, env={})
    assert settings.limits.burst == 2000 and settings.mqtt.username == "lordi-enrol"
    bad = tmp_path / "enrol.toml"
    bad.write_text(sample.read_text().replace("burst = 2000", "burst = -3"))
    try:
        load_settings(bad, env={})
    except EnrolConfigError as exc:
        assert str(exc).startswith(f"{bad}: limits.burst: ") and "(got -3)" in str(exc)
    else:
        raise AssertionError("a negative burst was accepted")
    assert lordi_main(["enrol", "list", "--config", str(bad)]) == 2
