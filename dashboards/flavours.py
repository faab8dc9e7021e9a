"""One dashboard definition, two flavours: InfluxQL on InfluxDB, MetricsQL on VictoriaMetrics.

The Fleet, School and Device dashboards are written once as `Panel` and `Variable`
specs holding both queries; `render` builds the JSON of one flavour. Both flavours
have the same panels (titles, layout, units, descriptions, options) and variables;
they differ in the data source type, the queries, what a table panel needs to show
one row per group (the VictoriaMetrics flavour merges its instant queries and names
their value columns), and the VictoriaMetrics flavour's uid and title (both sets are
loaded side by side by the file provider, which refuses a uid or title twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboards import metricsql
from dashboards.metricsql import Query
from dashboards.panels import DATASOURCE_NAME, DATASOURCE_UID, Json, dashboard, panel
from dashboards.panels import query_variable as influx_variable


@dataclass(frozen=True)
class Flavour:
    key: str  # what `lordi grafana push --flavour` takes
    datasource_type: str
    datasource_uid: str  # the provisioned data source the `datasource` variable starts on
    datasource_name: str
    folder: str  # where generate.py writes the JSON, under dashboards/
    uid_prefix: str
    title_suffix: str


INFLUXDB = Flavour("influxdb", "influxdb", DATASOURCE_UID, DATASOURCE_NAME, "", "lordi-", "")
VICTORIAMETRICS = Flavour(
    "victoriametrics",
    "prometheus",
    "lordi-victoriametrics",  # provisioning/grafana/datasources/victoriametrics.yaml
    "Lordi VictoriaMetrics",
    "vm",
    "lordi-vm-",
    " (VictoriaMetrics)",
)
FLAVOURS = (INFLUXDB, VICTORIAMETRICS)


@dataclass(frozen=True)
class Panel:
    """A panel in both flavours. `transformations` are the InfluxQL flavour's; the
    VictoriaMetrics flavour's come from its queries' columns. `vm_note` says what the
    VictoriaMetrics flavour computes differently; it ends that flavour's description."""

    kind: str
    title: str
    grid: tuple[int, int, int, int]
    influxql: list[Json]
    metricsql: list[Query]
    unit: str = ""
    description: str = ""
    vm_note: str = ""
    options: Json | None = None
    transformations: list[Json] | None = None
    custom: Json | None = None
    time_from: str = ""

    def render(self, flavour: Flavour) -> Json:
        if flavour is INFLUXDB:
            return panel(
                self.kind, self.title, self.influxql, self.grid, unit=self.unit,
                description=self.description, options=self.options,
                transformations=self.transformations, custom=self.custom,
                time_from=self.time_from,
            )  # fmt: skip
        description = " ".join(t for t in (self.description, self.vm_note) if t)
        doc = panel(
            self.kind, self.title, [q.target() for q in self.metricsql], self.grid,
            unit=self.unit, description=description, options=self.options,
            transformations=table_transformations(self.metricsql), custom=self.custom,
            time_from=self.time_from,
        )  # fmt: skip
        doc["datasource"] = metricsql.DATASOURCE
        doc["fieldConfig"]["overrides"] = [
            {
                "matcher": {"id": "byName", "options": q.column},
                "properties": [{"id": "unit", "value": q.unit}],
            }
            for q in self.metricsql
            if q.unit
        ]
        return doc


def table_transformations(queries: list[Query]) -> list[Json]:
    """Grafana gives each instant table query a frame of its own, its value in a column
    "Value #<refId>" ("Value" when the panel has a single one): merge the frames into
    one row per label set, drop the evaluation time, name the value columns."""
    columns = [q for q in queries if q.column]
    if not columns:
        return []
    names = {f"Value #{q.ref}": q.column for q in columns}
    if len(columns) == 1:
        names["Value"] = columns[0].column
    organize = {"excludeByName": {"Time": True}, "renameByName": names}
    steps = [{"id": "organize", "options": organize}]
    return [{"id": "merge", "options": {}}, *steps] if len(columns) > 1 else steps


@dataclass(frozen=True)
class Variable:
    """A template variable: SHOW TAG VALUES (InfluxQL) or label_values (Prometheus type)."""

    name: str
    label: str
    influxql: str
    metricsql: str
    multi: bool = False

    def render(self, flavour: Flavour) -> Json:
        if flavour is INFLUXDB:
            return influx_variable(self.name, self.label, self.influxql, self.multi)
        doc = influx_variable(self.name, self.label, self.metricsql, self.multi)
        doc["datasource"] = metricsql.DATASOURCE
        return doc


@dataclass(frozen=True)
class Board:
    name: str  # "fleet": uid lordi-fleet / lordi-vm-fleet, file fleet.json / vm/fleet.json
    title: str
    description: str
    variables: list[Variable]
    panels: list[Panel] = field(default_factory=list)

    def render(self, flavour: Flavour) -> Json:
        doc = dashboard(
            f"{flavour.uid_prefix}{self.name}",
            f"{self.title}{flavour.title_suffix}",
            self.description,
            [v.render(flavour) for v in self.variables],
            [p.render(flavour) for p in self.panels],
        )
        picker = doc["templating"]["list"][0]
        picker["current"] = {"text": flavour.datasource_name, "value": flavour.datasource_uid}
        picker["query"] = flavour.datasource_type  # the picker lists sources of that type
        return doc

    def path(self, flavour: Flavour) -> str:
        """The JSON file, relative to dashboards/."""
        return f"{flavour.folder}/{self.name}.json" if flavour.folder else f"{self.name}.json"
