"""Every pod the operator or the chart makes is admitted in a namespace at Pod Security level
`restricted`; and the checker that says so rejects a template that breaks any one rule."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from podsecurity import restricted_violations
from test_helm import render

from kubecast.api import load_text
from kubecast.operator.builders import build_channel_children, build_endpoint_children
from kubecast.operator.settings import OperatorSettings

SETTINGS = OperatorSettings(store_url="s3://media/live", store_credentials_secret="store-credentials")
# Every switch that changes a pod: relay (contribution port), both Secrets (projected volume),
# every protocol (UDP ports), pass-through and a ladder; an autoscaled and a fixed endpoint.
DOCS = load_text("""
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: relay}
spec:
  ingest:
    protocols: [RTMP, FragmentedMP4, CMAF, SRT, UDP, RTP]
    redundancy: Relay
    streamKeySecretRef: {name: key, key: streamKey}
    srt: {passphraseSecretRef: {name: srt, key: passphrase}}
  encoding: {preset: Default1080p}
---
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: plain}
spec: {encoding: {preset: None}}
---
apiVersion: kubecast.io/v1alpha1
kind: StreamingEndpoint
metadata: {name: scaled}
spec: {scaling: {minReplicas: 2, maxReplicas: 8}, hostNames: [live.example.com]}
---
apiVersion: kubecast.io/v1alpha1
kind: StreamingEndpoint
metadata: {name: fixed}
spec: {replicas: 3}
---
apiVersion: kubecast.io/v1alpha1
kind: StreamingEndpoint
metadata: {name: guarded}
spec:
  accessControl:
    allowedIps: [203.0.113.0/24]
    signingKeys: [{id: a, secretRef: {name: url-signing, key: a}}]
  cdn: {originAuthentication: {headerName: X-Origin-Auth, secretRef: {name: cdn-origin, key: header}}}
""")


def pod_templates() -> dict[str, dict]:
    """Every pod template, by a readable id: the operator's children and the chart's."""
    children = []
    for channel in DOCS.channels.values():
        children += build_channel_children(channel, uid="uid", namespace="media", settings=SETTINGS)
    for endpoint in DOCS.endpoints.values():
        children += build_endpoint_children(endpoint, uid="uid", namespace="media", settings=SETTINGS)
    everything_on = {
        "replicaCount": 1,
        "serviceMonitor": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
        "argocd": {"healthChecks": True},
    }
    for label, values in (("chart-defaults", None), ("chart-everything-on", everything_on)):
        children += [
            dict(d, metadata=dict(d["metadata"], name=f"{label}/{d['metadata']['name']}")) for d in render(values)
        ]
    templates = {
        f"{c['kind']}/{c['metadata']['name']}": c["spec"]["template"]
        for c in children
        if "template" in c.get("spec", {})
    }
    assert {
        "Deployment/relay-encoder-a",
        "Deployment/plain-packager",
        "Deployment/scaled-endpoint",
        "Deployment/chart-defaults/kubecast",
    } <= set(templates)
    assert {"configMap", "projected"} <= {
        kind
        for volume in templates["Deployment/guarded-endpoint"]["spec"]["volumes"]
        for kind in volume
        if kind != "name"
    }
    return templates


TEMPLATES = pod_templates()


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_pod_is_admitted_at_restricted(name):
    template = TEMPLATES[name]
    assert restricted_violations(template["spec"], template["metadata"].get("annotations")) == []
    # RuntimeDefault on the pod itself (not left to each container): the explicit ask.
    assert template["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def _first(spec: dict) -> dict:
    return spec["containers"][0]


def _context(spec: dict) -> dict:
    return _first(spec).setdefault("securityContext", {})


# One mutation per row of the documentation's tables; the rule's name must be in the verdict.
MUTATIONS: list[tuple[str, Callable[[dict], None]]] = [
    ("HostProcess", lambda s: _context(s).update(windowsOptions={"hostProcess": True})),
    ("Host Namespaces", lambda s: s.update(hostNetwork=True)),
    ("Host Namespaces", lambda s: s.update(hostPID=True)),
    ("Host Namespaces", lambda s: s.update(hostIPC=True)),
    ("Privileged Containers", lambda s: _context(s).update(privileged=True)),
    ("Capabilities", lambda s: _context(s)["capabilities"].update(add=["SYS_ADMIN"])),
    (
        "Capabilities",
        lambda s: _context(s)["capabilities"].update(add=["CHOWN"]),
    ),  # baseline allows it, restricted does not
    ("Capabilities", lambda s: _context(s)["capabilities"].update(drop=["NET_RAW"])),
    ("HostPath Volumes", lambda s: s.setdefault("volumes", []).append({"name": "host", "hostPath": {"path": "/"}})),
    ("Host Ports", lambda s: _first(s).setdefault("ports", []).append({"containerPort": 80, "hostPort": 80})),
    ("AppArmor", lambda s: _context(s).update(appArmorProfile={"type": "Unconfined"})),
    ("SELinux", lambda s: _context(s).update(seLinuxOptions={"type": "spc_t"})),
    ("SELinux", lambda s: s["securityContext"].update(seLinuxOptions={"user": "system_u"})),
    ("/proc Mount Type", lambda s: _context(s).update(procMount="Unmasked")),
    ("Seccomp", lambda s: _context(s).update(seccompProfile={"type": "Unconfined"})),
    ("Seccomp", lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"})),
    ("Seccomp", lambda s: s["securityContext"].pop("seccompProfile")),
    ("Sysctls", lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "65536"}])),
    (
        "Volume Types",
        lambda s: s.setdefault("volumes", []).append({"name": "nfs", "nfs": {"server": "nas", "path": "/"}}),
    ),
    ("Privilege Escalation", lambda s: _context(s).pop("allowPrivilegeEscalation")),
    ("Privilege Escalation", lambda s: _context(s).update(allowPrivilegeEscalation=True)),
    ("Running as Non-root", lambda s: s["securityContext"].pop("runAsNonRoot")),
    ("Running as Non-root", lambda s: _context(s).update(runAsNonRoot=False)),
    ("Running as Non-root user", lambda s: s["securityContext"].update(runAsUser=0)),
    ("Running as Non-root user", lambda s: _context(s).update(runAsUser=0)),
]


@pytest.mark.parametrize(("rule", "mutate"), MUTATIONS, ids=[f"{rule}-{i}" for i, (rule, _) in enumerate(MUTATIONS)])
@pytest.mark.parametrize("name", ["Deployment/relay-encoder-a", "Deployment/chart-defaults/kubecast"])
def test_a_template_that_breaks_a_rule_is_rejected(name, rule, mutate):
    spec = copy.deepcopy(TEMPLATES[name]["spec"])
    mutate(spec)
    violations = restricted_violations(spec)
    assert any(v.startswith(f"{rule}:") for v in violations), violations


def test_apparmor_annotation_is_checked():
    template = TEMPLATES["Deployment/plain-packager"]
    assert restricted_violations(
        template["spec"], {"container.apparmor.security.beta.kubernetes.io/packager": "unconfined"}
    )
    assert not restricted_violations(
        template["spec"], {"container.apparmor.security.beta.kubernetes.io/packager": "runtime/default"}
    )


def test_chart_scheduling_values_reach_the_pods_the_operator_creates(monkeypatch):
    """The chart's workloads and imagePullSecrets values travel to the operator in one env var
    and onto every encoder, packager and endpoint pod; the encoders keep their anti-affinity."""
    values = {
        "imagePullSecrets": ["registry"],
        "workloads": {
            "nodeSelector": {"pool": "media"},
            "tolerations": [{"key": "media", "operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "live",
        },
    }
    operator = next(d for d in render(values) if d["kind"] == "Deployment")
    for variable in operator["spec"]["template"]["spec"]["containers"][0]["env"]:
        monkeypatch.setenv(variable["name"], variable["value"])
    settings = OperatorSettings.from_environment()
    children = build_channel_children(DOCS.channels["relay"], uid="uid", namespace="media", settings=settings)
    children += build_endpoint_children(DOCS.endpoints["scaled"], uid="uid", namespace="media", settings=settings)
    pods = {c["metadata"]["name"]: c["spec"]["template"]["spec"] for c in children if c["kind"] == "Deployment"}
    assert set(pods) == {"relay-encoder-a", "relay-encoder-b", "relay-packager", "scaled-endpoint"}
    for name, pod in pods.items():
        assert pod["imagePullSecrets"] == [{"name": "registry"}], name
        assert pod["nodeSelector"] == {"pool": "media"} and pod["priorityClassName"] == "live", name
        assert pod["tolerations"] == values["workloads"]["tolerations"], name
        assert restricted_violations(pod) == [], name
    assert "podAntiAffinity" in pods["relay-encoder-a"]["affinity"]
    # The defaults add nothing.
    for variable in next(d for d in render() if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]:
        monkeypatch.setenv(variable["name"], variable["value"])
    plain = build_endpoint_children(
        DOCS.endpoints["scaled"], uid="uid", namespace="media", settings=OperatorSettings.from_environment()
    )[1]  # after its ConfigMap
    assert not {"imagePullSecrets", "nodeSelector", "tolerations", "priorityClassName"} & set(
        plain["spec"]["template"]["spec"]
    )


def _served_paths(container: dict, port: int) -> set[str]:
    """The HTTP paths the container's process serves on ``port``, from its own command line."""
    from kubecast.liveness import LIVENESS_PATH

    args = container["args"]
    if "--metrics-port" in args and args[args.index("--metrics-port") + 1] == str(port):
        return {"/metrics", LIVENESS_PATH}  # the metrics server, on its own thread (kubecast/runtime.py)
    if "--liveness-listen" in args and args[args.index("--liveness-listen") + 1].endswith(f":{port}"):
        return {LIVENESS_PATH}  # the endpoint's, on its own thread (kubecast/endpoint/main.py)
    if args[0] == "endpoint" and args[args.index("--listen") + 1].endswith(f":{port}"):
        from kubecast.endpoint.app import make_app
        from kubecast.storage import Store

        app = make_app(Store("memory://"))
        return {resource.canonical for resource in app.router.resources()}
    return set()


def test_every_data_plane_container_has_probes_on_what_it_serves():
    children = build_channel_children(DOCS.channels["relay"], uid="uid", namespace="media", settings=SETTINGS)
    children += build_endpoint_children(DOCS.endpoints["scaled"], uid="uid", namespace="media", settings=SETTINGS)
    checked = 0
    for child in (c for c in children if c["kind"] == "Deployment"):
        for container in child["spec"]["template"]["spec"]["containers"]:
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            for kind in ("livenessProbe", "readinessProbe"):
                probe = container[kind]
                if "httpGet" in probe:
                    port = ports[probe["httpGet"]["port"]]
                    assert probe["httpGet"]["path"] in _served_paths(container, port), (
                        child["metadata"]["name"],
                        container["name"],
                        kind,
                    )
                else:
                    assert probe["tcpSocket"]["port"] in ports.values()
                checked += 1
    assert checked == 2 * 6  # two probes each: ingest and encoder in A and in B, packager, endpoint


def test_every_data_plane_container_is_alive_only_while_its_loops_and_threads_beat():
    """Liveness is /livez (a hung loop or thread: 503), never the port or /metrics alone, which a hung
    process keeps answering; its patience is the heartbeat limit plus three probes."""
    from kubecast.liveness import LIVENESS_PATH

    children = build_channel_children(DOCS.channels["relay"], uid="uid", namespace="media", settings=SETTINGS)
    children += build_endpoint_children(DOCS.endpoints["scaled"], uid="uid", namespace="media", settings=SETTINGS)
    containers = [
        container
        for child in children
        if child["kind"] == "Deployment"
        for container in child["spec"]["template"]["spec"]["containers"]
    ]
    assert sorted(c["name"] for c in containers) == ["encoder", "encoder", "endpoint", "ingest", "ingest", "packager"]
    for container in containers:
        probe = container["livenessProbe"]
        assert probe["httpGet"]["path"] == LIVENESS_PATH, container["name"]
        assert (
            probe["periodSeconds"] * probe["failureThreshold"] <= 15
            and probe["timeoutSeconds"] < probe["periodSeconds"]
        )
        readiness = container["readinessProbe"]
        assert readiness != probe, "ready and alive are different questions"
