"""The registry's reload without restart (collector/notify/live.py): a valid file
replaces the registry whole, an invalid one is refused with the field and value and
the previous registry stays in force, logged once per version of the file; a
notification in flight keeps the registry it started with."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from collector.cli import watch_registry
from collector.notify import channels
from collector.notify.deliver import Notifier
from collector.notify.live import LiveRegistry, RegistryWatch, changes
from collector.notify.registry import parse_registry
from collector.notify.settings import NotifySettings
from tests.notify.factories import battery_alert
from tests.notify.registries import registry_toml, replace_file, technician

if TYPE_CHECKING:
    from collector.alerting import Alerting

A, B, C = "0340091A", "0340092B", "0340093C"
LOGGER = "collector.notify.live"


def _write(path: Path, schools: dict[str, str], **kw: Any) -> Path:
    replace_file(path, registry_toml(schools, **kw))
    return path


def _live(tmp_path: Path, clock: Callable[[], float] = time.time) -> LiveRegistry:
    path = _write(tmp_path / "schools.toml", {A: technician(A)})
    return LiveRegistry.load(path, clock)


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def _registry(schools: dict[str, str], **kw: Any) -> Any:
    import tomllib  # noqa: PLC0415

    return parse_registry(tomllib.loads(registry_toml(schools, **kw)))


def test_changes_names_schools_and_contractors_added_removed_changed() -> None:
    old = _registry({A: technician(A), B: technician(B)})
    new = _registry(
        {A: "autre@lycee.example.org", C: technician(C)}, repar_email="sav2@repar.example.org"
    )
    assert changes(old, new) == (
        f"schools added: {C}; schools removed: {B}; schools changed: {A}; "
        "contractors changed: repar"
    )
    assert changes(old, old) == "no change"
    tagged = _registry({A: technician(A), B: technician(B)}, asset_tags={B: {"d1": "T-1"}})
    assert changes(old, tagged) == f"schools changed: {B}"  # an asset tag is a change


def test_a_valid_file_replaces_the_registry_with_one_info_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = _live(tmp_path, clock=lambda: 1_800_000_000.0)
    before = live.current
    _write(live.path or tmp_path, {A: technician(A), B: technician(B)})
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert live.reload("SIGHUP") is True
    assert live.current is not before
    assert set(live.current.schools) == {A, B}
    assert (live.failures, live.refused, live.loaded_at) == (0, None, 1_800_000_000.0)
    [record] = _records(caplog)
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"registry {live.path} reloaded (SIGHUP): 2 schools, 2 contractors; schools added: {B}"
    )


@pytest.mark.parametrize(
    ("kw", "field", "value"),
    [
        (
            {"schools": {A: technician(A), B: "technicien at lycee.example.org"}},
            f"schools.{B}.level1[0].email",
            "'technicien at lycee.example.org'",
        ),
        (
            {"schools": {A: technician(A), B: technician(B)}, "hardware": "reparfix"},
            f"schools.{A}.hardware_contractor",
            "unknown contractor 'reparfix'",
        ),
    ],
)
def test_an_invalid_file_is_refused_naming_the_field_and_value_and_the_previous_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kw: dict[str, Any], field: str, value: str
) -> None:
    live = _live(tmp_path)
    before = live.current
    assert live.path is not None
    _write(live.path, kw.pop("schools"), **kw)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert live.reload("SIGHUP") is False
    assert live.current is before  # still in force, untouched
    assert live.failures == 1
    assert live.refused is not None and field in live.refused
    [record] = _records(caplog)
    assert record.levelno == logging.ERROR
    line = record.getMessage()
    assert "\n" not in line
    assert str(live.path) in line and field in line and value in line
    assert "the previous registry stays in force (1 schools, 2 contractors" in line


def test_the_watch_reloads_a_change_once_it_has_settled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = _live(tmp_path)
    assert live.path is not None
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert live.poll() is None  # unchanged
        _write(live.path, {A: technician(A), B: technician(B)})
        assert live.poll() is None  # changed since the last look: wait for one more
        assert live.poll() is True
        assert live.poll() is None  # loaded: nothing more to do
    assert set(live.current.schools) == {A, B}
    assert [r.getMessage().split(": ", 1)[0] for r in _records(caplog)] == [
        f"registry {live.path} reloaded (file changed)"
    ]


def test_a_refused_file_is_logged_once_until_it_changes_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = _live(tmp_path)
    before = live.current
    assert live.path is not None
    with caplog.at_level(logging.INFO, logger=LOGGER):
        _write(live.path, {A: technician(A), B: "pas-une-adresse"})
        results = [live.poll() for _ in range(6)]
        assert results == [None, False, None, None, None, None]
        assert live.failures == 1 and len(_records(caplog)) == 1
        # Changed again, still invalid: logged again, once.
        _write(live.path, {A: technician(A), B: technician(B)}, hardware="inconnu")
        assert [live.poll() for _ in range(4)] == [None, False, None, None]
        # A SIGHUP is an explicit request: it tries, and logs, again.
        assert live.reload("SIGHUP") is False
        assert live.current is before
        errors = [r for r in _records(caplog) if r.levelno == logging.ERROR]
        assert len(errors) == 3 and live.failures == 3
        assert "'pas-une-adresse'" in errors[0].getMessage()
        assert "unknown contractor 'inconnu'" in errors[1].getMessage()
        # Fixed: in force, the refusal forgotten.
        _write(live.path, {A: technician(A), B: technician(B)})
        assert [live.poll() for _ in range(3)] == [None, True, None]
    assert live.refused is None and set(live.current.schools) == {A, B}
    assert _records(caplog)[-1].levelno == logging.INFO


def test_a_missing_file_is_refused_once_and_the_previous_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    live = _live(tmp_path)
    assert live.path is not None
    live.path.unlink()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert [live.poll() for _ in range(4)] == [None, False, None, None]
    [record] = _records(caplog)
    assert "cannot read (No such file or directory)" in record.getMessage()
    assert set(live.current.schools) == {A}


def test_a_fixed_registry_has_nothing_to_reload() -> None:
    live = LiveRegistry(_registry({A: technician(A)}))
    assert live.reload() is False and live.poll() is None


def _eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_watch_thread_reloads_on_request_and_on_change(tmp_path: Path) -> None:
    live = _live(tmp_path)
    assert live.path is not None
    watch = RegistryWatch(live, poll_s=3600)  # only a request wakes it
    watch.start()
    try:
        _write(live.path, {A: technician(A), B: technician(B)})
        watch.request()
        assert _eventually(lambda: B in live.current.schools)
    finally:
        watch.stop()
    watch = RegistryWatch(live, poll_s=0.05)
    watch.start()
    try:
        _write(live.path, {A: technician(A), B: technician(B), C: technician(C)})
        assert _eventually(lambda: C in live.current.schools)
    finally:
        watch.stop()


def test_a_notification_in_flight_keeps_the_registry_it_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload during a send (here: right after its first e-mail) does not change
    its other channels: the level-2 e-mail and the retained list's asset tag come
    from the registry the send started with; the next send uses the new one."""
    device = "dev-0340091A-0001"
    path = _write(tmp_path / "schools.toml", {A: technician(A)}, asset_tags={A: {device: "OLD-1"}})
    live = LiveRegistry.load(path)
    alert = battery_alert(school=A, device=device)
    sent: list[list[str]] = []
    published: list[list[dict[str, Any]]] = []

    def send_email(smtp: object, to: Sequence[str], subject: str, body: str) -> None:
        sent.append(list(to))
        if len(sent) == 1:  # in the middle of the send: the file changes and is reloaded
            _write(
                path, {A: "nouveau@lycee.example.org"},
                repar_email="sav-nouveau@repar.example.org", asset_tags={A: {device: "NEW-1"}},
            )  # fmt: skip
            assert live.reload("SIGHUP")

    def publish_retained(broker: object, topic: str, state: list[dict[str, Any]]) -> None:
        published.append(state)

    monkeypatch.setattr(channels, "send_email", send_email)
    monkeypatch.setattr(channels, "publish_retained", publish_retained)
    settings = NotifySettings.model_validate({"escalate_on_open": ["battery"]})
    notifier = Notifier(live, settings, open_alerts=lambda _uai: [alert])
    report = notifier.send("opened", alert)
    assert report.ok, report.results
    assert sent == [[technician(A)], ["sav@repar.example.org"]]
    assert [a["asset_tag"] for a in published[0]] == ["OLD-1"]
    assert notifier.registry is live.current  # the new one, for the next send
    notifier.send("opened", alert)
    assert sent[2:] == [["nouveau@lycee.example.org"], ["sav-nouveau@repar.example.org"]]
    assert [a["asset_tag"] for a in published[1]] == ["NEW-1"]


@pytest.fixture
def sighup_restored() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGHUP)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


@pytest.mark.usefixtures("sighup_restored")
def test_sighup_reloads_through_the_collectors_handler(tmp_path: Path) -> None:
    """`lordi-collector run`'s SIGHUP handler (watch_registry), in this process."""
    live = _live(tmp_path)
    assert live.path is not None
    alerting = cast("Alerting", SimpleNamespace(notifier=Notifier(live, NotifySettings())))
    watch = watch_registry(None, alerting)
    assert watch is not None
    try:
        _write(live.path, {A: technician(A), B: technician(B)})
        os.kill(os.getpid(), signal.SIGHUP)
        assert _eventually(lambda: B in live.current.schools)
    finally:
        watch.stop()


@pytest.mark.usefixtures("sighup_restored")
def test_sighup_without_alerts_is_logged_and_harmless(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="collector.cli"):
        assert watch_registry(None, None) is None
        os.kill(os.getpid(), signal.SIGHUP)  # the default action would end the process
        assert _eventually(lambda: "nothing to reload" in caplog.text)
