"""Collectors that own schools (`[partition]`): which schools this collector serves and
the topic filters it subscribes to.

The region's schools are split into `count` partitions: a school goes to the
partition its registry entry names (`partition = k`), else to a stable hash of its
UAI. A collector serving partition `index` subscribes, with plain persistent
subscriptions, to the telemetry topic of each school it owns and to nothing else:
every device and every access point of a school is judged by exactly one process,
and Mosquitto keeps queueing for the partition's session across a broker restart
(it restores plain subscriptions; it does not restore `$share` ones).

Every process of one partition (the active one and its standbys) uses the same MQTT
client id, hence the same broker session: a standby that takes over receives what
the broker queued and what the dead process left unacknowledged. The lock that
makes sure only one of them is connected is in `collector/partition_lock.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHOOL_LEVEL = 2  # lordi/v1/<school>/<device>/telemetry


class PartitionSettings(BaseModel):
    """`[partition]`: off (count = 0) unless the region runs several collectors."""

    model_config = ConfigDict(extra="forbid")

    # How many partitions the region's schools are split into; 0: no partitions (one
    # collector, or a `$share` group, takes every school).
    count: Annotated[int, Field(ge=0, le=1024)] = 0
    # The partition this process serves, 0 .. count - 1. Its standbys have the same.
    index: Annotated[int, Field(ge=0)] = 0
    # Only one process of a partition at a time: "postgresql" (an advisory lock on
    # lock_url, by default the alert store's), "file" (a lock file in lock_dir, for
    # processes on one machine), "none" (no standby: the operator guarantees one
    # process per partition), "auto" (postgresql when the alert store is, else file).
    lock: Literal["auto", "postgresql", "file", "none"] = "auto"
    lock_url: str | None = None
    lock_dir: Path | None = None
    # A standby tries to take the lock this often; the holder checks it still holds
    # it this often, and stops (exit code 3) the moment it does not.
    standby_poll_s: Annotated[float, Field(gt=0, le=300)] = 2.0
    lock_check_s: Annotated[float, Field(gt=0, le=300)] = 5.0

    @model_validator(mode="after")
    def _index_in_range(self) -> Self:
        if self.count and self.index >= self.count:
            raise ValueError(
                f"index = {self.index} is not a partition of count = {self.count} "
                f"(0 .. {self.count - 1})"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.count > 0


def hashed_partition(uai: str, count: int) -> int:
    """The partition of a school the registry does not place: stable across processes,
    machines and Python versions (not `hash()`, which is salted per process)."""
    digest = hashlib.sha256(uai.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def school_filter(topic: str, uai: str) -> str:
    """The telemetry topic filter of one school, from the collector's `[mqtt] topic`."""
    levels = topic.split("/")
    if len(levels) <= SCHOOL_LEVEL or levels[SCHOOL_LEVEL] != "+":
        raise ValueError(
            f"mqtt.topic = {topic!r}: with [partition] the school level (the third) "
            "must be '+', e.g. lordi/v1/+/+/telemetry"
        )
    levels[SCHOOL_LEVEL] = uai
    return "/".join(levels)


class Partition:
    """This collector's schools, from the registry in force (re-read at each call, so a
    school added to the registry is picked up at the next `filters()`)."""

    def __init__(
        self,
        settings: PartitionSettings,
        topic: str,
        placements: Callable[[], Mapping[str, int | None]],
    ) -> None:
        if not settings.enabled:
            raise ValueError("Partition needs [partition] count > 0")
        school_filter(topic, "X")  # the topic must have a school level to fill
        self.count, self.index, self.topic = settings.count, settings.index, topic
        self._placements = placements  # UAI -> the registry's `partition`, or None

    @property
    def name(self) -> str:
        return f"partition {self.index} of {self.count}"

    def client_id(self, base: str) -> str:
        """The MQTT client id of every process of this partition: one broker session.
        The count is in it, so a region that re-partitions starts fresh sessions."""
        return f"{base}-p{self.index}of{self.count}"

    def place(self, uai: str, assigned: int | None) -> int:
        if assigned is not None and 0 <= assigned < self.count:
            return assigned
        return hashed_partition(uai, self.count)

    def owns(self, uai: str) -> bool:
        placements = self._placements()
        return self.place(uai, placements.get(uai)) == self.index

    def owned(self) -> list[str]:
        return sorted(u for u, a in self._placements().items() if self.place(u, a) == self.index)

    def misplaced(self) -> list[str]:
        """Schools whose registry `partition` is not a partition of `count` (hashed)."""
        return sorted(
            f"{u} (partition = {a})"
            for u, a in self._placements().items()
            if a is not None and not 0 <= a < self.count
        )

    def filters(self) -> list[str]:
        return [school_filter(self.topic, uai) for uai in self.owned()]

    def foreign_filters(self) -> list[str]:
        """What this session must not hold: the other schools' filters and the all-school
        filter (a session that served without partitions, or another partition's
        schools before the registry moved them)."""
        mine = set(self.owned())
        others = (school_filter(self.topic, u) for u in self._placements() if u not in mine)
        return [self.topic, *sorted(others)]


def placements_of(schools: Mapping[str, object]) -> dict[str, int | None]:
    """UAI -> `partition` from a registry's `schools` table."""
    return {uai: getattr(school, "partition", None) for uai, school in schools.items()}


def split(schools: Iterable[str], count: int) -> dict[int, list[str]]:
    """How `count` partitions split these schools by hash (for docs and the demo)."""
    parts: dict[int, list[str]] = {i: [] for i in range(count)}
    for uai in sorted(schools):
        parts[hashed_partition(uai, count)].append(uai)
    return parts
