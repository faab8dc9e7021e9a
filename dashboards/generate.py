"""Generate the Fleet, School and Device dashboards in two flavours, InfluxQL
(dashboards/*.json) and MetricsQL on VictoriaMetrics (dashboards/vm/*.json), and the
Operations dashboard (PromQL on the metrics, InfluxQL on the agents' figures) as JSON.

    python -m dashboards.generate          # rewrite dashboards/*.json and dashboards/vm/*.json
    python -m dashboards.generate --check  # exit 1 when a committed file is stale

Fleet reads the per-school summaries (`collector/summaries.py`), so its cost does
not grow with the number of laptops (except its Wi-Fi access panels,
dashboards/reach.py); School and Device read the raw series of one school or one
device. Series and fields: docs/contract.md, "What is stored".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.device import device_board
from dashboards.flavours import FLAVOURS, Board
from dashboards.fleet import fleet_board
from dashboards.operations import operations
from dashboards.panels import Json
from dashboards.school import school_board

HERE = Path(__file__).resolve().parent


def round_trip(doc: Json) -> Json:
    """`doc` read into grafana-foundation-sdk's Dashboard model and written back."""
    model = Dashboard.from_json(doc)
    out: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return out


def boards() -> list[Board]:
    """The dashboards written in both flavours."""
    return [fleet_board(), school_board(), device_board()]


def generated() -> dict[str, Json]:
    """{path under dashboards/: dashboard} as the SDK model writes them: fleet.json,
    school.json, device.json, operations.json, vm/fleet.json, vm/school.json,
    vm/device.json."""
    out = {b.path(f): round_trip(b.render(f)) for f in FLAVOURS for b in boards()}
    out["operations.json"] = round_trip(operations())
    return out


def render(doc: Json) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name, doc in generated().items():
        path = HERE / name
        text = render(doc)
        if "--check" in argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print("stale:", ", ".join(stale), "- run python -m dashboards.generate")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
