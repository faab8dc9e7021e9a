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
FROM python:3.11-slim

WORKDIR /srv/lordi
# The packages the wheel is built from (pyproject.toml [tool.setuptools]); the rest
# of the repository (tests, docs, .venv) stays out of the image.
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY collector ./collector
COPY lordi ./lordi
COPY dashboards ./dashboards
RUN pip install --no-cache-dir ".[collector,web]" \
    && useradd --system --home-dir /var/lib/lordi-collector --shell /usr/sbin/nologin lordi \
    && mkdir -p /var/lib/lordi-collector \
    && chown lordi:lordi /var/lib/lordi-collector

# Device state and alerts (SQLite by default) live here: a named volume in compose.
VOLUME ["/var/lib/lordi-collector"]
USER lordi
ENTRYPOINT ["lordi-collector"]
CMD ["run", "--config", "/etc/lordi/collector.toml"]
