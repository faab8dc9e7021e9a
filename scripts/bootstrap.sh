#!/usr/bin/env bash
# Install what `make demo` and `make test` need on a fresh Debian/Ubuntu machine:
# the servers of the private local stack (Debian packages) and a .venv with the project.
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need_pkgs=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_pkgs+=(mosquitto)
command -v victoria-metrics >/dev/null 2>&1 || need_pkgs+=(victoria-metrics)
command -v influxd >/dev/null 2>&1 || need_pkgs+=(influxdb)
# systemd-analyze checks the agent's unit file (the package only installs tools here)
command -v systemd-analyze >/dev/null 2>&1 || need_pkgs+=(systemd)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
if [ "${1:-}" = "--test" ]; then  # `make test` only: `make demo` needs none of these
  # nginx -t and a real nginx check the web worklist's reverse-proxy example (Debian
  # starts its own nginx service on install; the tests run private instances)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_pkgs+=(nginx)
  # the web tests drive Debian's Chromium (Playwright never downloads a browser); a
  # font, or the screenshots show boxes
  command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_pkgs+=(fonts-dejavu-core)
  # the accessibility checks fetch axe-core from the npm registry
  # (NodeSource's nodejs conflicts with Debian's npm and ships its own npm beside
  # node, not always linked onto PATH: tests/web/browser.py then runs that one)
  node_npm="$(dirname "$(readlink -f "$(command -v node || echo /nonexistent)")")/../lib/node_modules/npm/bin/npm-cli.js"
  command -v npm >/dev/null 2>&1 || [ -f "$node_npm" ] || need_pkgs+=(npm)
  # tests/bundle/ builds the Windows package's MSI (wixl) and reads its tables back
  command -v wixl >/dev/null 2>&1 || need_pkgs+=(wixl)
  command -v msiinfo >/dev/null 2>&1 || need_pkgs+=(msitools)
fi
"$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_pkgs[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  # The packages' own services are not used (the stack runs private instances).
  $SUDO apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "bootstrap: Python 3.11 or newer is required ($("$PY" --version) found)" >&2
  exit 1
fi

stamp=$VENV/.installed
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing the project and its dev tools into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  # grafana-client (the `grafana` extra, in dev) pulls urllib3-future, whose wheel
  # overwrites urllib3 at every start: built from source with URLLIB3_NO_OVERRIDE,
  # it installs beside it, so the tests run on the urllib3 production runs on.
  URLLIB3_NO_OVERRIDE=1 PIP_NO_BINARY=urllib3-future \
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
  # (urllib3-future numbers itself 2.10 and up; urllib3 itself is 2.0 to 2.9 so far)
  "$VENV/bin/python" -c 'import sys, urllib3; sys.exit(int(urllib3.__version__.split(".")[1]) >= 10)' \
    || { echo "bootstrap: urllib3 was replaced by urllib3-future" >&2; exit 1; }
  "$VENV/bin/python" -c 'import agent, collector, lordi, paho.mqtt, influxdb_client, pydantic, pytest'
  touch "$stamp"
fi
