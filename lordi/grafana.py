"""`lordi grafana push`: per-school folders, teams and dashboards through Grafana's HTTP API.

For each school of the registry (provisioning/schools.toml): a folder
`lordi-<UAI>`, a team `lordi-<UAI>`, folder permissions reduced to that team
(Viewer) — Grafana admins keep access to everything — and the School dashboard with
its `school` variable fixed to the UAI. Then a regional folder `lordi-region`, its
team (`lordi-region`) and the Fleet and Device dashboards. Every step looks up what
exists first (folder by uid, team by exact name, dashboard by uid), so running it
again updates in place and never duplicates.

Why the standard library and not grafana-client: seven endpoints, JSON in and out;
grafana-client pulls niquests, which swaps urllib3 for urllib3-future in the
environment (design.md, "Known facts") — a risk for influxdb-client beside it.

The token (a Grafana service-account token with the Admin role) comes from
LORDI_GRAFANA_TOKEN or --token-file; it is sent only in the Authorization header and
never printed. Tested against a local stand-in HTTP server (tests/test_grafana_push.py),
not against a real Grafana.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import UAI  # stdlib only: cheap to import

Json = dict[str, Any]
VIEW = 1  # Grafana folder permission levels: 1 View, 2 Edit, 4 Admin
REGION_FOLDER = "lordi-region"
REGION_TEAM = "lordi-region"
DASHBOARDS_DIR = Path(__file__).resolve().parents[1] / "dashboards"


class GrafanaError(Exception):
    """A Grafana request failed; the message names the endpoint and the status."""


def school_folder_uid(uai: str) -> str:
    # Not the dashboard's uid: Grafana long kept folders and dashboards in one table
    # with one uid space per organisation.
    return f"lordi-{uai}"


def school_team(uai: str) -> str:
    return f"lordi-{uai}"


@dataclass
class Grafana:
    url: str
    token: str
    timeout_s: float = 30.0

    def call(
        self, method: str, path: str, body: Json | None = None, missing_ok: bool = False
    ) -> Any:
        """JSON of the answer; None for a 404 when `missing_ok`."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method)  # noqa: S310
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        endpoint = f"{method} {path.split('?', maxsplit=1)[0]}"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and missing_ok:
                return None
            raise GrafanaError(f"Grafana {endpoint}: HTTP {exc.code}{_reason(exc)}") from None
        except OSError as exc:
            raise GrafanaError(f"Grafana {endpoint}: {exc}") from None
        return json.loads(raw) if raw else None


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(exc.read()).get("message", "")
    except (ValueError, AttributeError, OSError):
        message = ""
    return f" ({str(message)[:200]})" if message else ""


def ensure_folder(api: Grafana, uid: str, title: str) -> str:
    if api.call("GET", f"/api/folders/{uid}", missing_ok=True) is not None:
        return f"folder {uid}: exists"
    api.call("POST", "/api/folders", {"uid": uid, "title": title})
    return f"folder {uid}: created"


def ensure_team(api: Grafana, name: str) -> tuple[int, str]:
    found = api.call("GET", "/api/teams/search?" + urllib.parse.urlencode({"name": name}))
    for team in (found or {}).get("teams", []):
        if team.get("name") == name:  # the search also matches other names
            return int(team["id"]), f"team {name}: exists"
    created = api.call("POST", "/api/teams", {"name": name})
    return int(created["teamId"]), f"team {name}: created"


def restrict_folder(api: Grafana, uid: str, team_id: int) -> str:
    """Replace the folder's permission list by one View grant for the team: the
    default Viewer/Editor role grants go; Grafana admins see every folder anyway."""
    items = [{"teamId": team_id, "permission": VIEW}]
    api.call("POST", f"/api/folders/{uid}/permissions", {"items": items})
    return f"folder {uid}: viewable by team {team_id} only (and admins)"


def upload(api: Grafana, doc: Json, folder_uid: str) -> str:
    uid = doc["uid"]
    current = api.call("GET", f"/api/dashboards/uid/{uid}", missing_ok=True)
    if current is not None and current.get("meta", {}).get("provisioned"):
        return f"dashboard {uid}: provisioned from files, left as is"
    body = {
        "dashboard": {**doc, "id": None},
        "folderUid": folder_uid,
        "overwrite": True,
        "message": "lordi grafana push",
    }
    api.call("POST", "/api/dashboards/db", body)
    return f"dashboard {uid}: {'updated' if current is not None else 'created'} in {folder_uid}"


def school_dashboard(template: Json, uai: str, name: str) -> Json:
    """The School dashboard of one school: its own uid and title, and the `school`
    variable replaced by a hidden constant, so the page shows that school only."""
    doc = copy.deepcopy(template)
    doc["uid"] = f"lordi-school-{uai}"
    doc["title"] = f"Lordi - {name} ({uai})"
    variables = doc["templating"]["list"]
    for i, var in enumerate(variables):
        if var.get("name") == "school":
            variables[i] = {
                "name": "school",
                "label": "School",
                "type": "constant",
                "query": uai,
                "hide": 2,
                "current": {"text": uai, "value": uai},
            }
    return doc


def load_schools(registry: Path) -> dict[str, str]:
    """UAI -> school name from the registry; only what this command needs."""
    schools = tomllib.loads(registry.read_text(encoding="utf-8")).get("schools", {})
    for uai in schools:
        if not UAI.match(uai):
            raise GrafanaError(f"{registry}: [schools.{uai}]: not a UAI code like 0341234A")
    return {uai: str(school.get("name", uai)) for uai, school in schools.items()}


def load_dashboard(folder: Path, name: str) -> Json:
    path = folder / name
    try:
        doc: Json = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GrafanaError(f"dashboard file {path}: {exc.strerror}") from None
    return doc


def push(api: Grafana, schools: dict[str, str], dashboards: Path, region_team: str) -> list[str]:
    done = []
    school_template = load_dashboard(dashboards, "school.json")
    for uai, name in sorted(schools.items()):
        folder = school_folder_uid(uai)
        done.append(ensure_folder(api, folder, f"Lordi - {name} ({uai})"))
        team_id, msg = ensure_team(api, school_team(uai))
        done += [msg, restrict_folder(api, folder, team_id)]
        done.append(upload(api, school_dashboard(school_template, uai, name), folder))
    done.append(ensure_folder(api, REGION_FOLDER, "Lordi - Région"))
    team_id, msg = ensure_team(api, region_team)
    done += [msg, restrict_folder(api, REGION_FOLDER, team_id)]
    for file_name in ("fleet.json", "device.json"):
        done.append(upload(api, load_dashboard(dashboards, file_name), REGION_FOLDER))
    return done


def read_token(token_file: str | None) -> str:
    if token_file:
        return Path(token_file).read_text(encoding="utf-8").strip()
    return os.environ.get("LORDI_GRAFANA_TOKEN", "").strip()


def cmd_push(args: argparse.Namespace) -> int:
    try:
        token = read_token(args.token_file)
        if not token:
            raise GrafanaError("no token: set LORDI_GRAFANA_TOKEN or pass --token-file")
        schools = load_schools(Path(args.registry))
        if args.school:
            unknown = sorted(set(args.school) - set(schools))
            if unknown:
                raise GrafanaError(f"--school: not in {args.registry}: {', '.join(unknown)}")
            schools = {uai: schools[uai] for uai in args.school}
        api = Grafana(args.url, token)
        for line in push(api, schools, Path(args.dashboards), args.region_team):
            print(line)
    except (GrafanaError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("grafana", help="Grafana folders, teams and dashboards per school")
    acts = p.add_subparsers(dest="action", required=True)
    s = acts.add_parser("push", help="create or update every school's folder, team, dashboard")
    s.add_argument("--url", required=True, help="Grafana base URL, e.g. https://grafana.example")
    s.add_argument("--registry", required=True, help="the school registry (schools.toml)")
    s.add_argument("--token-file", help="service-account token (default: LORDI_GRAFANA_TOKEN)")
    s.add_argument("--dashboards", default=str(DASHBOARDS_DIR), help="folder of the JSON files")
    s.add_argument("--region-team", default=REGION_TEAM, help="team of the regional technicians")
    s.add_argument("--school", action="append", help="only this UAI (repeatable)")
    s.set_defaults(func=cmd_push)
