"""The corpus of hostile and broken telemetry under `corpus/`, listed in `corpus/cases.toml`.

A case is a payload file (or a generator, for inputs too big to keep in the
repository), the topic it is published on, and what the collector must say about it:
the whole message rejected, or some of its samples, with a reason containing `reason`
(the field and the value). Files are templates: `{{SCHOOL}}`, `{{DEVICE}}` and `{{TS}}`
(a recent timestamp, so that only the intended field is wrong) are filled in at load."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
DEFAULT_TOPIC = "lordi/v1/{{SCHOOL}}/{{DEVICE}}/telemetry"


@dataclass(frozen=True)
class Case:
    name: str
    topic: str
    payload: bytes
    reason: str  # expected in every dead letter of the case
    level: str  # "message": the whole message is rejected; "sample": its samples are
    rejections: int  # dead letters expected
    known_bug: str | None = None
    bug_stage: str | None = None  # "validate" or "deadletter"


def _sample(ts: str) -> str:
    return (
        f'{{"ts": "{ts}", "os": {{"platform": "linux"}}, "batteries": '
        '[{"name": "BAT0", "present": true, "status": "full", "health_pct": 90.0}]}'
    )


def _envelope(samples: list[str]) -> bytes:
    return (
        '{"schema": 1, "device": "{{DEVICE}}", "school": "{{SCHOOL}}", "agent_version": "1.2.0",'
        f' "samples": [{", ".join(samples)}]}}'
    ).encode()


def _oversize() -> bytes:
    """A valid-looking message over the 256 KiB limit (a 300 KiB model name)."""
    return _envelope(
        [_sample("{{TS}}").replace('"BAT0"', '"BAT0", "model": "' + "x" * 300_000 + '"')]
    )


def _thousands_of_samples() -> bytes:
    """3,000 samples in one message (the contract allows 500), under the byte limit."""
    return _envelope(['{"ts": "{{TS}}", "os": {"platform": "linux"}}'] * 3000)


GENERATORS: dict[str, Callable[[], bytes]] = {
    "oversize": _oversize,
    "thousands_of_samples": _thousands_of_samples,
}


def _fill(template: bytes, school: str, device: str, ts: str) -> bytes:
    return (
        template.replace(b"{{SCHOOL}}", school.encode())
        .replace(b"{{DEVICE}}", device.encode())
        .replace(b"{{TS}}", ts.encode())
    )


def load_cases(school: str, device: str, now: datetime | None = None) -> list[Case]:
    """The cases for `school`; `device` may hold "{i}", replaced by the case's index."""
    manifest = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))
    ts = ((now or datetime.now(UTC)) - timedelta(hours=3)).replace(microsecond=0)
    stamp = ts.isoformat().replace("+00:00", "Z")
    cases = []
    for i, entry in enumerate(manifest["case"]):
        dev = device.replace("{i}", str(i))
        if "generate" in entry:
            template = GENERATORS[entry["generate"]]()
        else:
            template = (CORPUS / entry["file"]).read_bytes()
        topic = entry.get("topic", DEFAULT_TOPIC)
        cases.append(
            Case(
                name=entry["name"],
                topic=_fill(topic.encode(), school, dev, stamp).decode(),
                payload=_fill(template, school, dev, stamp),
                reason=entry["reason"],
                level=entry.get("level", "message"),
                rejections=entry.get("rejections", 1),
                known_bug=entry.get("known_bug"),
                bug_stage=entry.get("bug_stage"),
            )
        )
    return cases


def corpus_files() -> set[str]:
    """Every payload file of the folder (each must be listed in the manifest)."""
    return {p.name for p in CORPUS.iterdir() if p.name != "cases.toml"}


def listed_files() -> set[str]:
    manifest = tomllib.loads((CORPUS / "cases.toml").read_text(encoding="utf-8"))
    return {entry["file"] for entry in manifest["case"] if "file" in entry}


def dead_letter_view(raw: bytes) -> dict[str, object]:
    return dict(json.loads(raw))
