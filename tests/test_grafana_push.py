"""`lordi grafana push` against a local stand-in for Grafana's HTTP API.

No Grafana server can run here (design.md, "Known facts"): the stand-in below is a
small http.server that keeps folders, teams, permissions and dashboards in memory
the way the Grafana 11 endpoints answer, and records every request. The requests
are grafana-client's (the library builds the paths, query strings and bodies); the
stand-in answers the shapes that library sends. What it proves: the requests' shape
(paths, methods, JSON bodies, the bearer token), idempotency (a second run finds the
folders and teams and creates nothing), and error messages. What it cannot prove:
that a real Grafana accepts these bodies.
"""

# ruff: noqa: PLR0911, PLR0912 - the stand-in routes requests in one match statement

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from lordi import cli

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "provisioning" / "schools.toml"
TOKEN = "glsa_test-token-not-a-secret"
UAIS = ["0300004D", "0310003C", "0340001A", "0340002B", "0660005E"]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    auth: str
    body: Any
    content_type: str = ""
    user_agent: str = ""


@dataclass
class FakeGrafana:
    prefix: str = ""  # Grafana served under a sub-path (root_url with serve_from_sub_path)
    requests: list[Request] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    teams: dict[int, str] = field(default_factory=dict)
    permissions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    provisioned: set[str] = field(default_factory=set)
    fail: dict[tuple[str, str], int] = field(default_factory=dict)  # (method, path) -> status

    def answer(self, req: Request) -> tuple[int, Any]:
        if req.auth != f"Bearer {TOKEN}":
            return 401, {"message": "Unauthorized"}
        if not req.path.startswith(self.prefix + "/api/"):
            return 404, {"message": "not found"}
        path = req.path.removeprefix(self.prefix)
        if (req.method, path) in self.fail:
            return self.fail[(req.method, path)], {"message": "stand-in failure"}
        parts = path.strip("/").split("/")
        match req.method, parts:
            case "GET", ["api", "folders", uid]:
                found = self.folders.get(uid)
                return (200, found) if found else (404, {"message": "folder not found"})
            case "POST", ["api", "folders"]:
                if req.body["uid"] in self.folders:
                    return 409, {"message": "a folder with the same uid already exists"}
                self.folders[req.body["uid"]] = dict(req.body)
                return 200, dict(req.body)
            case "POST", ["api", "folders", uid, "permissions"]:
                if uid not in self.folders:
                    return 404, {"message": "folder not found"}
                self.permissions[uid] = req.body["items"]
                return 200, {"message": "Folder permissions updated"}
            case "GET", ["api", "teams", "search"]:
                name = req.query.get("name", [""])[0]
                teams = [{"id": i, "name": n} for i, n in self.teams.items() if name in n]
                return 200, {"totalCount": len(teams), "teams": teams}
            case "POST", ["api", "teams"]:
                if req.body["name"] in self.teams.values():
                    return 409, {"message": "Team name taken"}
                team_id = len(self.teams) + 1
                self.teams[team_id] = req.body["name"]
                return 200, {"message": "Team created", "teamId": team_id}
            case "GET", ["api", "dashboards", "uid", uid]:
                if uid not in self.dashboards:
                    return 404, {"message": "Dashboard not found"}
                meta = {"provisioned": uid in self.provisioned}
                return 200, {"dashboard": self.dashboards[uid]["dashboard"], "meta": meta}
            case "POST", ["api", "dashboards", "db"]:
                if req.body["folderUid"] not in self.folders:
                    return 400, {"message": "folder not found"}
                self.dashboards[req.body["dashboard"]["uid"]] = req.body
                return 200, {"status": "success", "uid": req.body["dashboard"]["uid"]}
        return 404, {"message": "no such endpoint in the stand-in"}

    def calls(self, method: str, prefix: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]


def _handler(fake: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            req = Request(
                self.command,
                url.path,
                parse_qs(url.query),
                self.headers.get("Authorization", ""),
                json.loads(raw) if raw else None,
                self.headers.get("Content-Type", ""),
                self.headers.get("User-Agent", ""),
            )
            fake.requests.append(req)
            status, doc = fake.answer(req)
            out = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def push(url: str, *extra: str) -> int:
    return cli.main(["grafana", "push", "--url", url, "--registry", str(REGISTRY), *extra])


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORDI_GRAFANA_TOKEN", TOKEN)


def test_first_push_creates_folders_teams_permissions_dashboards(
    grafana: tuple[FakeGrafana, str], token: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = grafana
    assert push(url) == 0
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err
    assert all(r.auth == f"Bearer {TOKEN}" for r in fake.requests)
    assert all(r.user_agent.startswith("grafana-client/") for r in fake.requests)
    assert all(r.content_type.startswith("application/json") for r in fake.calls("POST"))
    assert sorted(fake.folders) == sorted([f"lordi-{u}" for u in UAIS] + ["lordi-region"])
    assert fake.folders["lordi-0340001A"]["title"] == "Lordi - Lycée Jean Moulin (0340001A)"
    assert sorted(fake.teams.values()) == sorted([f"lordi-{u}" for u in UAIS] + ["lordi-region"])
    team_of = {name: i for i, name in fake.teams.items()}
    for uai in UAIS:  # one View grant for the school's team, nothing else
        assert fake.permissions[f"lordi-{uai}"] == [
            {"teamId": team_of[f"lordi-{uai}"], "permission": 1}
        ]
    assert fake.permissions["lordi-region"] == [
        {"teamId": team_of["lordi-region"], "permission": 1}
    ]
    posted = {r.body["dashboard"]["uid"]: r.body for r in fake.calls("POST", "/api/dashboards/db")}
    assert sorted(posted) == sorted(
        [f"lordi-school-{u}" for u in UAIS] + ["lordi-fleet", "lordi-device"]
    )
    assert not set(posted) & set(fake.folders)  # one uid space for folders and dashboards
    school = posted["lordi-school-0340002B"]
    assert school["folderUid"] == "lordi-0340002B" and school["overwrite"] is True
    assert school["dashboard"]["id"] is None
    variables = {v["name"]: v for v in school["dashboard"]["templating"]["list"]}
    assert variables["school"]["type"] == "constant" and variables["school"]["query"] == "0340002B"
    assert variables["school"]["hide"] == 2  # not shown, so not changed from the page
    assert variables["datasource"]["current"]["value"] == "lordi-influxdb"
    committed = json.loads((ROOT / "dashboards" / "school.json").read_text(encoding="utf-8"))
    assert school["dashboard"]["panels"] == committed["panels"]  # same queries ($school)
    assert posted["lordi-fleet"]["folderUid"] == "lordi-region"
    assert (
        posted["lordi-device"]["dashboard"]["panels"]
        == json.loads((ROOT / "dashboards" / "device.json").read_text(encoding="utf-8"))["panels"]
    )
    search = fake.calls("GET", "/api/teams/search")[0]
    assert search.query == {"name": ["lordi-0300004D"]}
    assert "folder lordi-0340001A: created" in out.out


def test_second_push_creates_nothing(
    grafana: tuple[FakeGrafana, str], token: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = grafana
    assert push(url) == 0
    folders, teams = dict(fake.folders), dict(fake.teams)
    fake.requests.clear()
    assert push(url) == 0
    assert [r for r in fake.requests if r.method == "POST" and r.path == "/api/folders"] == []
    assert fake.calls("POST", "/api/teams") == []
    assert fake.folders == folders and fake.teams == teams
    assert len(fake.calls("POST", "/api/dashboards/db")) == len(UAIS) + 2  # updated in place
    out = capsys.readouterr().out
    assert "folder lordi-0340001A: exists" in out and "team lordi-region: exists" in out
    assert "dashboard lordi-fleet: updated in lordi-region" in out


def test_victoriametrics_flavour_pushes_the_metricsql_dashboards(
    grafana: tuple[FakeGrafana, str], token: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = grafana
    assert push(url, "--school", "0340002B") == 0  # InfluxQL first, as by default
    assert push(url, "--school", "0340002B", "--flavour", "victoriametrics") == 0
    out = capsys.readouterr().out
    posted = [r.body for r in fake.calls("POST", "/api/dashboards/db")]
    assert [b["dashboard"]["uid"] for b in posted[3:]] == [
        "lordi-school-0340002B", "lordi-vm-fleet", "lordi-vm-device"
    ]  # fmt: skip
    assert "dashboard lordi-school-0340002B: updated in lordi-0340002B" in out  # replaced
    vm_dir = ROOT / "dashboards" / "vm"
    school = fake.dashboards["lordi-school-0340002B"]["dashboard"]
    committed = json.loads((vm_dir / "school.json").read_text(encoding="utf-8"))
    assert school["panels"] == committed["panels"]  # MetricsQL, `school="$school"`
    assert school["title"] == "Lordi - Lycée Marie Curie (0340002B)"
    variables = {v["name"]: v for v in school["templating"]["list"]}
    assert variables["school"] == {
        "name": "school", "label": "School", "type": "constant", "query": "0340002B",
        "hide": 2, "current": {"text": "0340002B", "value": "0340002B"},
    }  # fmt: skip
    assert variables["datasource"]["current"]["value"] == "lordi-victoriametrics"
    fleet = fake.dashboards["lordi-vm-fleet"]
    assert fleet["folderUid"] == "lordi-region"
    assert (
        fleet["dashboard"]["panels"]
        == json.loads((vm_dir / "fleet.json").read_text(encoding="utf-8"))["panels"]
    )
    assert "lordi-fleet" in fake.dashboards  # the InfluxQL one stays: another uid


def test_flavours_are_the_dashboards_folders() -> None:
    from dashboards.flavours import FLAVOURS  # noqa: PLC0415 - the generator's side
    from lordi.grafana import FLAVOURS as PUSHED  # noqa: PLC0415

    assert {f.key: f.folder for f in FLAVOURS} == PUSHED
    for folder in PUSHED.values():
        assert (ROOT / "dashboards" / folder / "school.json").is_file()
    with pytest.raises(SystemExit):
        push("http://127.0.0.1:9", "--flavour", "prometheus")


def test_team_search_needs_the_exact_name(grafana: tuple[FakeGrafana, str], token: None) -> None:
    """Grafana's team search matches substrings: lordi-0340001A-old is not lordi-0340001A."""
    fake, url = grafana
    fake.teams[1] = "lordi-0340001A-old"
    assert push(url, "--school", "0340001A") == 0
    assert "lordi-0340001A" in fake.teams.values()
    assert fake.permissions["lordi-0340001A"][0]["teamId"] != 1


def test_provisioned_dashboards_are_left_alone(
    grafana: tuple[FakeGrafana, str], token: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url = grafana
    fake.folders["lordi-region"] = {"uid": "lordi-region", "title": "Lordi"}
    fake.dashboards["lordi-fleet"] = {"dashboard": {"uid": "lordi-fleet"}}
    fake.provisioned.add("lordi-fleet")
    assert push(url, "--school", "0340001A") == 0
    posted = [r.body["dashboard"]["uid"] for r in fake.calls("POST", "/api/dashboards/db")]
    assert "lordi-fleet" not in posted and "lordi-device" in posted
    assert "lordi-fleet: provisioned from files, left as is" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/teams", 403),
        ("POST", "/api/folders/lordi-0340001A/permissions", 500),
        ("POST", "/api/dashboards/db", 412),
    ],
)
@pytest.mark.usefixtures("token")
def test_errors_name_the_endpoint_and_status(
    grafana: tuple[FakeGrafana, str],
    capsys: pytest.CaptureFixture[str],
    method: str,
    path: str,
    status: int,
) -> None:
    fake, url = grafana
    fake.fail[(method, path)] = status
    assert push(url, "--school", "0340001A") == 2
    err = capsys.readouterr().err
    assert f"Grafana {method} {path}: HTTP {status} (stand-in failure)" in err
    assert TOKEN not in err


def test_token_from_file_and_refusals(
    grafana: tuple[FakeGrafana, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = grafana
    monkeypatch.delenv("LORDI_GRAFANA_TOKEN", raising=False)
    assert push(url) == 2
    assert "no token: set LORDI_GRAFANA_TOKEN or pass --token-file" in capsys.readouterr().err
    assert fake.requests == []
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    assert push(url, "--token-file", str(token_file), "--school", "0999999Z") == 2
    assert "--school: not in" in capsys.readouterr().err and fake.requests == []
    assert push(url, "--token-file", str(token_file), "--school", "0660005E") == 0
    assert fake.requests and all(r.auth == f"Bearer {TOKEN}" for r in fake.requests)
    wrong = tmp_path / "wrong"
    wrong.write_text("glsa_wrong")
    assert push(url, "--token-file", str(wrong), "--school", "0660005E") == 2
    err = capsys.readouterr().err
    assert "Grafana GET /api/folders/lordi-0660005E: HTTP 401 (Unauthorized)" in err
    assert "glsa_wrong" not in err


def test_grafana_under_a_sub_path(grafana: tuple[FakeGrafana, str], token: None) -> None:
    fake, url = grafana
    fake.prefix = "/grafana"
    assert push(url + "/grafana/", "--school", "0340001A") == 0
    assert fake.requests and all(r.path.startswith("/grafana/api/") for r in fake.requests)
    assert "lordi-0340001A" in fake.folders


def test_unreachable_grafana_names_the_request(
    token: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert push(f"http://127.0.0.1:{port}", "--school", "0340001A") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Grafana GET /api/folders/lordi-0340001A: ")
    assert TOKEN not in err


def test_without_grafana_client_the_command_says_what_to_install(
    grafana: tuple[FakeGrafana, str],
    token: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = grafana
    for name in ("grafana_client", "grafana_client.api", "grafana_client.client"):
        monkeypatch.setitem(sys.modules, name, None)  # the import fails as if absent
    assert push(url) == 2
    assert "pip install 'lordi-telemetry[grafana]'" in capsys.readouterr().err
    assert fake.requests == []
