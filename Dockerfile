# The Lordi collector as a container image (docker-compose.yml builds it).
#
#     docker build -t lordi-collector .
#     docker run --rm lordi-collector validate --topic lordi/v1/0341234A/d-1/telemetry msg.json
#
# The collector's and the web worklist's dependencies (pyproject.toml extras
# "collector" and "web"; docker-compose.yml runs `lordi-web` from this image as the
# `web` service); the configuration is mounted at run time
# (provisioning/collector/collector.toml, and secrets through LORDI_COLLECTOR_*
# environment variables).
#
# Two stages: the wheel is built where gcc and the Python headers are (the full
# python image, same Debian as the slim one), with the collector's hot modules
# compiled by mypyc (LORDI_COMPILE=1: setup.py, collector/compiled.py); the image
# itself only installs that wheel. Not built on the development machine (it runs no
# containers); `make compile` builds the same wheel there.
FROM python:3.11 AS wheel

WORKDIR /src
# The packages the wheel is built from (pyproject.toml [tool.setuptools]) and its
# build files; the rest of the repository (tests, docs, .venv) stays out.
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY build_backend ./build_backend
COPY agent ./agent
COPY collector ./collector
COPY lordi ./lordi
COPY dashboards ./dashboards
RUN LORDI_COMPILE=1 pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

WORKDIR /srv/lordi
COPY --from=wheel /wheels /wheels
# `lordi-collector compiled` exits 1 unless the hot modules run compiled.
RUN pip install --no-cache-dir --find-links /wheels "lordi-telemetry[collector,web]" \
    && lordi-collector compiled \
    && useradd --system --home-dir /var/lib/lordi-collector --shell /usr/sbin/nologin lordi \
    && mkdir -p /var/lib/lordi-collector \
    && chown lordi:lordi /var/lib/lordi-collector

# Device state and alerts (SQLite by default) live here: a named volume in compose.
VOLUME ["/var/lib/lordi-collector"]
USER lordi
ENTRYPOINT ["lordi-collector"]
CMD ["run", "--config", "/etc/lordi/collector.toml"]
