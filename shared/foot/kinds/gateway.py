"""GatewayRoute: how the shared APISIX gateway reaches a Service wherever FOOT placed it.

Owned by gateway-sync (bucket `gateway-routes`; spec from users, status written by
gateway-sync alone). gateway-sync turns each route, with the works' status (where
the Service's workload has ready replicas, per cluster, and how the Service is
reached from outside) into APISIX upstreams and a route, and keeps them so.

    apiVersion: gateway.foot.dev/v1alpha1
    kind: GatewayRoute
    metadata: {name: shop, namespace: shop}
    spec:
      hosts: [shop.example.com]
      paths: ["/", "/api/*"]
      methods: [GET, POST]                      # all when unset
      backend: {service: shop, port: 80}        # workload: Deployment/shop by default
      loadBalancer: {type: chash, hashOn: header, key: x-user}
      healthCheck: {active: {httpPath: /healthz}}
      retries: 2
      timeout: {connect: 3, send: 30, read: 30}
      plugins: {key-auth: {}, limit-count: {count: 100, time_window: 60}}
      release:
        strategy: canary                         # none | canary | blueGreen
        canary:
          backend: {service: shop-v2, port: 80}
          weight: 10                              # percent of traffic, 0..100
          match: {header: {name: x-canary, value: always}}

Its status (gateway-sync's) shows the computed upstreams (per role: APISIX id, nodes with
their weights and cluster, share of traffic) whether or not an APISIX instance is
configured, what each configured instance holds of the route, and two conditions:
Programmed (True once every instance holds the route as computed; False with reason
NoGatewayConfigured, Pending or GatewayError) and BackendsReady (False, NoReadyBackend,
while APISIX answers 503 at once).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from foot.catalog import GATEWAY_ROUTES
from foot.kinds import KindInfo
from foot.objects import FrozenModel, KubeObject, check_label, check_subdomain

GATEWAY_GROUP = "gateway.foot.dev"
GATEWAY_API_VERSION = f"{GATEWAY_GROUP}/v1alpha1"

LoadBalancerType = Literal["roundrobin", "chash", "ewma", "least_conn"]
HashOn = Literal["vars", "header", "cookie", "consumer", "vars_combinations"]
HttpMethod = Literal[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"
]
Strategy = Literal["none", "canary", "blueGreen"]
Colour = Literal["blue", "green"]

RESERVED_PLUGINS = frozenset({"traffic-split", "fault-injection"})
"""Plugins gateway-sync writes itself (release strategy, fast answer when nothing is ready)."""
_HOST = re.compile(r"^\*?[0-9a-zA-Z-._\[\]:]+$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_COOKIE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
MAX_PATH = 4096


class Backend(FrozenModel):
    """A Service template FOOT places, and the workload whose ready replicas weigh it."""

    service: str
    """Name of the Service template (in the route's namespace)."""
    port: int | str
    """The Service port to send traffic to: its number or its name."""
    workload_kind: str = "Deployment"
    """Kind of the workload behind the Service (Deployment, StatefulSet, ...)."""
    workload: str | None = None
    """Name of that workload; the Service's name when unset."""

    @field_validator("service")
    @classmethod
    def _service_name(cls, value: str) -> str:
        return check_label(value)

    @field_validator("port")
    @classmethod
    def _port(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 65535:  # noqa: PLR2004
            raise ValueError(f"{value} is not a port (1..65535)")
        if isinstance(value, str):
            check_label(value)
        return value

    @field_validator("workload")
    @classmethod
    def _workload_name(cls, value: str | None) -> str | None:
        return None if value is None else check_subdomain(value)

    @property
    def workload_name(self) -> str:
        return self.workload or self.service


def _present(data: Any, *names: tuple[str, str]) -> Any:
    """Make absent conditional fields explicit, so their checks run and errors name the field
    by its wire name (a validated default would be reported by its Python name)."""
    if isinstance(data, dict):
        data = dict(data)
        for alias, python_name in names:
            if alias not in data and python_name not in data:
                data[alias] = None
    return data


class LoadBalancer(FrozenModel):
    type: LoadBalancerType = "roundrobin"
    """roundrobin (weighted), chash (consistent hashing on hashOn/key), ewma (lowest latency)
    or least_conn (fewest active connections)."""
    hash_on: HashOn = "vars"
    """chash only: what the hash is computed from."""
    key: str | None = None
    """chash only: the variable, header or cookie name hashed (not needed for consumer)."""

    @model_validator(mode="before")
    @classmethod
    def _explicit(cls, data: Any) -> Any:
        return _present(data, ("key", "key"))

    @field_validator("key")
    @classmethod
    def _key_for_chash(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("type")
        if kind == "chash" and info.data.get("hash_on") != "consumer" and not value:
            raise ValueError("is required when type is chash (unless hashOn is consumer)")
        if kind != "chash" and value is not None:
            raise ValueError(f"only applies to type chash, not {kind}")
        return value


class HealthyThresholds(FrozenModel):
    interval: int = Field(default=1, ge=1)
    """Seconds between active probes of a healthy node."""
    http_statuses: list[int] = Field(default_factory=lambda: [200, 302], min_length=1)
    """Statuses counted as success."""
    successes: int = Field(default=2, ge=1, le=254)
    """Successes in a row that make a node healthy."""


class UnhealthyThresholds(FrozenModel):
    interval: int = Field(default=1, ge=1)
    """Seconds between active probes of an unhealthy node."""
    http_statuses: list[int] = Field(
        default_factory=lambda: [429, 404, 500, 501, 502, 503, 504, 505], min_length=1
    )
    """Statuses counted as failure."""
    http_failures: int = Field(default=5, ge=1, le=254)
    """HTTP failures in a row that make a node unhealthy."""
    tcp_failures: int = Field(default=2, ge=1, le=254)
    """TCP failures in a row that make a node unhealthy."""
    timeouts: int = Field(default=3, ge=1, le=254)
    """Timeouts in a row that make a node unhealthy."""


class ActiveHealthCheck(FrozenModel):
    type: Literal["http", "https", "tcp"] = "http"
    """Probe protocol."""
    http_path: str = Field(default="/", pattern=r"^/")
    """Path probed (http/https)."""
    timeout: float = Field(default=1, gt=0)
    """Seconds a probe may take."""
    concurrency: int = Field(default=10, ge=1)
    """Probes at once."""
    https_verify_certificate: bool = True
    """Verify the node's certificate (https)."""
    healthy: HealthyThresholds = Field(default_factory=HealthyThresholds)
    """When a node counts as healthy again."""
    unhealthy: UnhealthyThresholds = Field(default_factory=UnhealthyThresholds)
    """When a node counts as unhealthy."""


class HealthCheck(FrozenModel):
    active: ActiveHealthCheck = Field(default_factory=ActiveHealthCheck)
    """APISIX probes every node itself (on top of FOOT's per-cluster readiness)."""


class Timeout(FrozenModel):
    connect: float = Field(gt=0)
    """Seconds to connect to a node."""
    send: float = Field(gt=0)
    """Seconds to send the request."""
    read: float = Field(gt=0)
    """Seconds to wait for the response."""


class HeaderMatch(FrozenModel):
    name: str = Field(pattern=_HEADER.pattern)
    """Request header name."""
    value: str = Field(min_length=1)
    """Value it must equal."""


class CookieMatch(FrozenModel):
    name: str = Field(pattern=_COOKIE.pattern)
    """Cookie name."""
    value: str = Field(min_length=1)
    """Value it must equal."""


class CanaryMatch(FrozenModel):
    """Requests that always go to the canary; exactly one of header or cookie."""

    header: HeaderMatch | None = None
    """Match on a request header."""
    cookie: CookieMatch | None = None
    """Match on a cookie."""

    @model_validator(mode="after")
    def _exactly_one(self) -> CanaryMatch:
        if (self.header is None) == (self.cookie is None):
            raise ValueError("set exactly one of header or cookie")
        return self


class Canary(FrozenModel):
    backend: Backend
    """The new version's Service (and workload)."""
    weight: int = Field(default=0, ge=0, le=100)
    """Percent of the remaining traffic sent to the canary (0..100)."""
    match: CanaryMatch | None = None
    """Requests matching this always reach the canary, whatever the weight."""


class BlueGreen(FrozenModel):
    green: Backend
    """The green colour's Service; `spec.backend` is the blue one."""
    active: Colour = "blue"
    """The colour that receives all traffic; switching it is one write to APISIX."""
    preview_header: str | None = Field(default=None, pattern=_HEADER.pattern)
    """Requests with this header set to `true` reach the inactive colour (to test it)."""


class Release(FrozenModel):
    strategy: Strategy = "none"
    """none: all traffic to `backend`; canary: a second version with a weight or a match;
    blueGreen: all traffic on one colour, switched atomically."""
    canary: Canary | None = None
    """Required with strategy canary."""
    blue_green: BlueGreen | None = None
    """Required with strategy blueGreen."""

    @model_validator(mode="before")
    @classmethod
    def _explicit(cls, data: Any) -> Any:
        return _present(data, ("canary", "canary"), ("blueGreen", "blue_green"))

    @field_validator("canary")
    @classmethod
    def _canary(cls, value: Canary | None, info: ValidationInfo) -> Canary | None:
        strategy = info.data.get("strategy")
        if strategy == "canary" and value is None:
            raise ValueError("is required when strategy is canary")
        if strategy != "canary" and value is not None:
            raise ValueError(f"only applies to strategy canary, not {strategy}")
        return value

    @field_validator("blue_green")
    @classmethod
    def _blue_green(cls, value: BlueGreen | None, info: ValidationInfo) -> BlueGreen | None:
        strategy = info.data.get("strategy")
        if strategy == "blueGreen" and value is None:
            raise ValueError("is required when strategy is blueGreen")
        if strategy != "blueGreen" and value is not None:
            raise ValueError(f"only applies to strategy blueGreen, not {strategy}")
        return value


class GatewayRouteSpec(FrozenModel):
    hosts: list[str] = Field(default_factory=list)
    """Host names matched (`*.example.com` allowed); any host when empty."""
    paths: list[str] = Field(min_length=1)
    """URI paths matched; a trailing `*` matches a prefix (APISIX `uris`)."""
    methods: list[HttpMethod] = Field(default_factory=list)
    """HTTP methods matched; all when empty."""
    priority: int = 0
    """APISIX route priority when several routes match."""
    backend: Backend
    """The Service (and its workload) the route fronts; the blue colour in blueGreen."""
    load_balancer: LoadBalancer = Field(default_factory=LoadBalancer)
    """How APISIX picks a node."""
    health_check: HealthCheck | None = None
    """Active health checks by APISIX; none when unset."""
    retries: int | None = Field(default=None, ge=0)
    """Retries on another node when one fails; APISIX's default (node count) when unset."""
    retry_timeout: float | None = Field(default=None, ge=0)
    """Seconds retries may take in total; no limit when unset."""
    timeout: Timeout | None = None
    """Connect/send/read timeouts; APISIX's defaults when unset."""
    plugins: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Extra APISIX plugins on the route (auth, rate limits...), passed through as given.
    traffic-split and fault-injection are FOOT's own and may not be set here."""
    release: Release = Field(default_factory=Release)
    """Release strategy: none, canary or blueGreen."""

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if not _HOST.match(host):
                raise ValueError(f"{host!r} is not a host name (letters, digits, '-', '.', '*')")
        if len(set(hosts)) != len(hosts):
            raise ValueError("lists a host twice")
        return hosts

    @field_validator("paths")
    @classmethod
    def _paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not path.startswith("/") or len(path) > MAX_PATH:
                raise ValueError(f"{path!r} must start with '/' (at most {MAX_PATH} characters)")
        if len(set(paths)) != len(paths):
            raise ValueError("lists a path twice")
        return paths

    @field_validator("methods")
    @classmethod
    def _methods(cls, methods: list[str]) -> list[str]:
        if len(set(methods)) != len(methods):
            raise ValueError("lists a method twice")
        return methods

    @field_validator("plugins")
    @classmethod
    def _plugins(cls, plugins: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        reserved = sorted(RESERVED_PLUGINS & plugins.keys())
        if reserved:
            raise ValueError(
                f"{', '.join(reserved)} is managed by FOOT (use spec.release); remove it"
            )
        return plugins

    def backends(self) -> dict[str, Backend]:
        """Every backend by its role: stable, canary, blue, green."""
        release = self.release
        if release.canary is not None:
            return {"stable": self.backend, "canary": release.canary.backend}
        if release.blue_green is not None:
            return {"blue": self.backend, "green": release.blue_green.green}
        return {"stable": self.backend}


ConditionStatus = Literal["True", "False", "Unknown"]

PROGRAMMED = "Programmed"
"""Condition: the route and its upstreams are in every configured APISIX instance as computed."""
BACKENDS_READY = "BackendsReady"
"""Condition: at least one node can serve the route (else APISIX answers 503 at once)."""


class GatewayRouteCondition(FrozenModel):
    type: str
    """Programmed or BackendsReady."""
    status: ConditionStatus
    """Whether it holds."""
    reason: str
    """Machine-readable reason: Programmed, NoGatewayConfigured, Pending, GatewayError;
    BackendsFound, NoReadyBackend."""
    message: str = ""
    """Detail in words."""
    last_transition_time: datetime | None = None
    """When status last changed."""


class GatewayNodeStatus(FrozenModel):
    address: str
    """`host:port` APISIX sends requests to (a NodePort or a load balancer address)."""
    weight: int
    """Relative weight: the ready replicas behind this address."""
    cluster: str
    """Member cluster the address belongs to."""


class GatewayUpstreamStatus(FrozenModel):
    role: str
    """stable, canary, blue or green."""
    id: str
    """The APISIX upstream id (the same on every instance)."""
    type: LoadBalancerType
    """Load-balancing algorithm."""
    traffic_percent: int
    """Percent of the route's requests sent to this upstream (those no canary match or
    preview header catches); 0 for every upstream while no backend is ready."""
    nodes: list[GatewayNodeStatus] = Field(default_factory=list)
    """Its nodes and their weights; empty when no cluster has a ready replica."""


class GatewayInstanceStatus(FrozenModel):
    url: str
    """Admin API of one APISIX instance."""
    synced: bool
    """Its managed objects match the desired state (every route, not only this one)."""
    programmed: bool = False
    """This route and its upstreams are in that instance exactly as computed."""
    message: str = ""
    """Why not, when not: last error of the instance, or what is missing there."""


class GatewayRouteStatus(FrozenModel):
    observed_generation: int | None = None
    """The spec generation this status was computed from."""
    route_id: str | None = None
    """The APISIX route id (the same on every instance)."""
    upstreams: list[GatewayUpstreamStatus] = Field(default_factory=list)
    """The computed upstreams: per role, the nodes with their weights and the share of
    traffic. Computed whether or not an APISIX instance is configured."""
    nodes: dict[str, list[str]] = Field(default_factory=dict)
    """Per role (stable, canary, blue, green): `host:port` nodes (see `upstreams`)."""
    answering_fast: bool = False
    """No backend is ready anywhere: APISIX answers 503 at once (fault-injection)."""
    instances: list[GatewayInstanceStatus] = Field(default_factory=list)
    """Per configured APISIX instance: whether this route is written there; empty when no
    instance is configured."""
    conditions: list[GatewayRouteCondition] = Field(default_factory=list)
    """Programmed (written to APISIX, or why not: NoGatewayConfigured, Pending,
    GatewayError) and BackendsReady."""

    def condition(self, condition_type: str) -> GatewayRouteCondition | None:
        return next((c for c in self.conditions if c.type == condition_type), None)


class GatewayRoute(KubeObject):
    api_version: Literal["gateway.foot.dev/v1alpha1"]
    kind: Literal["GatewayRoute"]
    spec: GatewayRouteSpec
    status: GatewayRouteStatus = Field(default_factory=GatewayRouteStatus)

    namespaced: ClassVar[bool] = True


def gateway_route_kind() -> KindInfo:
    return KindInfo(
        api_version=GATEWAY_API_VERSION,
        kind="GatewayRoute",
        model=GatewayRoute,
        owner=GATEWAY_ROUTES.owner,
        bucket=GATEWAY_ROUTES.name,
        plural="gatewayroutes",
        namespaced=True,
        short_names=("groute",),
    )


def gateway_kinds() -> list[KindInfo]:
    return [gateway_route_kind()]
