"""`lordi grafana push`: per-school folders, teams and dashboards through Grafana's HTTP API.

For each school of the registry (provisioning/schools.toml): a folder
`lordi-<UAI>`, a team `lordi-<UAI>`, folder permissions reduced to that team
(Viewer) — Grafana admins keep access to everything — and the School dashboard with
its `school` variable fixed to the UAI. Then a regional folder `lordi-region`, its
team (`lordi-region`) and the Fleet and Device dashboards. `--flavour
victoriametrics` pushes the MetricsQL dashboards (dashboards/vm/) instead of the
InfluxQL ones: the same per-school uids (a school's dashboard is replaced), the
flavour's own uids for Fleet and Device. Every step looks up what
exists first (folder by uid, team by exact name, dashboard by uid), so running it
again updates in place and never duplicates.

Through grafana-client (the maintained continuation of grafana-api), installed by
the optional extra `grafana` only: it depends on niquests, whose urllib3-future
replaces the `urllib3` package in the environment it is installed in, under the
collector's influxdb-client (measurements: pyproject.toml and docs/grafana.md,
"Client library"). So grafana-client is imported when the command runs, not when
`lordi` starts.

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
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import UAI  # stdlib only: cheap to import

Json = dict[str, Any]
VIEW = 1  # Grafana folder permission levels: 1 View, 2 Edit, 4 Admin
REGION_FOLDER = "lordi-region"
REGION_TEAM = "lordi-region"
DASHBOARDS_DIR = Path(__file__).resolve().parents[1] / "dashboards"
# --flavour: the folder of each flavour's JSON under --dashboards (dashboards/flavours.py;
# a test checks that both agree): InfluxQL for InfluxDB, MetricsQL for VictoriaMetrics.
FLAVOURS = {"influxdb": "", "victoriametrics": "vm"}


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
    """grafana-client's GrafanaApi, with every failure turned into a GrafanaError that
    names the request (method and path, as in Grafana's API documentation)."""

    url: str
    token: str = field(repr=False)
    timeout_s: float = 30.0
    _api: Any = field(default=None, init=False, repr=False)

    @property
    def api(self) -> Any:
        if self._api is None:
            self._api = connect(self.url, self.token, self.timeout_s)
        return self._api

    def call(self, endpoint: str, request: Callable[[Any], Any], missing_ok: bool = False) -> Any:
        """`request(api)`'s answer; None for a 404 when `missing_ok`."""
        api = self.api  # first: says what to install when grafana-client is missing
        from grafana_client.client import GrafanaException  # noqa: PLC0415 - optional extra

        try:
            return request(api)
        except GrafanaException as exc:
            if exc.status_code == 404 and missing_ok:
                return None
            if not exc.status_code:  # a timeout: no HTTP status
                raise GrafanaError(f"Grafana {endpoint}: {exc.message}") from None
            raise GrafanaError(
                f"Grafana {endpoint}: HTTP {exc.status_code}{_reason(exc.response)}"
            ) from None
        except OSError as exc:  # niquests' errors (connection refused, TLS, ...)
            raise GrafanaError(f"Grafana {endpoint}: {exc}") from None

    def close(self) -> None:
        if self._api is not None:
            self._api.client.s.close()


def connect(url: str, token: str, timeout_s: float) -> Any:
    """A GrafanaApi for `url` (scheme, host[:port], optional path prefix)."""
    try:
        from grafana_client.api import GrafanaApi  # noqa: PLC0415 - optional extra
    except ImportError:
        raise GrafanaError(
            "grafana-client is not installed: pip install 'lordi-telemetry[grafana]'"
        ) from None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GrafanaError(f"--url: expected http(s)://host[:port][/prefix] (got {url!r})")
    prefix = parts.path.strip("/")
    return GrafanaApi(
        token,  # a str: sent as "Authorization: Bearer <token>"
        host=parts.netloc.rpartition("@")[2],  # keeps the port and IPv6 brackets
        protocol=parts.scheme,
        url_path_prefix=f"{prefix}/" if prefix else "",
        timeout=timeout_s,
    )


def _reason(response: Any) -> str:
    message = response.get("message", "") if isinstance(response, dict) else ""
    return f" ({str(message)[:200]})" if message else ""


def ensure_folder(api: Grafana, uid: str, title: str) -> str:
    found = api.call(
        f"GET /api/folders/{uid}", lambda g: g.folder.get_folder(uid), missing_ok=True
    )
    if found is not None:
        return f"folder {uid}: exists"
    api.call("POST /api/folders", lambda g: g.folder.create_folder(title, uid=uid))
    return f"folder {uid}: created"


def ensure_team(api: Grafana, name: str) -> tuple[int, str]:
    # get_team_by_name puts the name in the query string as is: quoted here.
    quoted = urllib.parse.quote(name, safe="")
    found = api.call("GET /api/teams/search", lambda g: g.teams.get_team_by_name(quoted))
    for team in found or []:
        if team.get("name") == name:  # the search also matches other names
            return int(team["id"]), f"team {name}: exists"
    created = api.call("POST /api/teams", lambda g: g.teams.add_team({"name": name}))
    return int(created["teamId"]), f"team {name}: created"


def restrict_folder(api: Grafana, uid: str, team_id: int) -> str:
    """Replace the folder's permission list by one View grant for the team: the
    default Viewer/Editor role grants go; Grafana admins see every folder anyway."""
    items = [{"teamId": team_id, "permission": VIEW}]
    api.call(
        f"POST /api/folders/{uid}/permissions",
        lambda g: g.folder.update_folder_permissions(uid, items),
    )
    return f"folder {uid}: viewable by team {team_id} only (and admins)"


def upload(api: Grafana, doc: Json, folder_uid: str) -> str:
    uid = doc["uid"]
    current = api.call(
        f"GET /api/dashboards/uid/{uid}",
        lambda g: g.dashboard.get_dashboard(uid),
        missing_ok=True,
    )
    if current is not None and current.get("meta", {}).get("provisioned"):
        return f"dashboard {uid}: provisioned from files, left as is"
    body = {
        "dashboard": {**doc, "id": None},
        "folderUid": folder_uid,
        "overwrite": True,
        "message": "lordi grafana push",
    }
    api.call("POST /api/dashboards/db", lambda g: g.dashboard.update_dashboard(body))
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
        dashboards = Path(args.dashboards) / FLAVOURS[args.flavour]
        try:
            for line in push(api, schools, dashboards, args.region_team):
                print(line)
        finally:
            api.close()
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
    s.add_argument(
        "--flavour",
        choices=sorted(FLAVOURS),
        default="influxdb",
        help="the dashboards of your store: InfluxQL (influxdb, the default) or "
        "MetricsQL (victoriametrics: the JSON files of vm/ under --dashboards)",
    )
    s.add_argument("--region-team", default=REGION_TEAM, help="team of the regional technicians")
    s.add_argument("--school", action="append", help="only this UAI (repeatable)")
    s.set_defaults(func=cmd_push)
