"""The Pod Security Standards, `restricted` level, as a pure function over a pod spec.

Each check is one row of the tables at
https://kubernetes.io/docs/concepts/security/pod-security-standards/ (the Baseline controls,
which Restricted includes, then the Restricted ones), in the same order and with the same
allowed values, so that a namespace labelled ``pod-security.kubernetes.io/enforce: restricted``
admits what this function passes.  It answers with the list of violations (empty: admitted).
"""

from __future__ import annotations

from collections.abc import Iterator

# Baseline, "Capabilities": what a container may add beyond the runtime's default set.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
# Baseline, "SELinux": the only types a pod or container may ask for.
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# Baseline, "Sysctls": the safe set.
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
# Restricted, "Volume Types".
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# Restricted, "Capabilities": all dropped, and only this one may come back.
RESTRICTED_ADD = {"NET_BIND_SERVICE"}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}
APPARMOR_TYPES = {"RuntimeDefault", "Localhost"}


def _containers(spec: dict) -> Iterator[dict]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(field) or []


def restricted_violations(spec: dict, annotations: dict | None = None) -> list[str]:
    """Every way ``spec`` (a PodSpec, e.g. a Deployment's ``spec.template.spec``) breaks the
    restricted profile; ``annotations`` are the pod template's (AppArmor's old form)."""
    found: list[str] = []
    pod = spec.get("securityContext") or {}
    containers = list(_containers(spec))

    def each(field: str) -> Iterator[tuple[str, object]]:
        """(where, value) of a securityContext field at pod level and in every container."""
        if field in pod:
            yield "pod", pod[field]
        for container in containers:
            context = container.get("securityContext") or {}
            if field in context:
                yield f"container {container['name']}", context[field]

    # --- Baseline ---
    for where, options in each("windowsOptions"):
        if (options or {}).get("hostProcess"):
            found.append(f"HostProcess: {where} sets windowsOptions.hostProcess")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"Host Namespaces: {field} is true")
    for container in containers:
        if (container.get("securityContext") or {}).get("privileged"):
            found.append(f"Privileged Containers: container {container['name']} is privileged")
    for where, capabilities in each("capabilities"):
        for added in (capabilities or {}).get("add") or []:
            if added not in BASELINE_CAPABILITIES:
                found.append(f"Capabilities: {where} adds {added}")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            found.append(f"HostPath Volumes: volume {volume['name']} is a hostPath")
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"Host Ports: container {container['name']} uses hostPort {port['hostPort']}")
    for where, profile in each("appArmorProfile"):
        if (profile or {}).get("type") not in APPARMOR_TYPES:
            found.append(f"AppArmor: {where} asks for profile type {(profile or {}).get('type')}")
    for key, value in (annotations or {}).items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            found.append(f"AppArmor: annotation {key} is {value}")
    for where, options in each("seLinuxOptions"):
        options = options or {}
        if options.get("type", "") not in SELINUX_TYPES:
            found.append(f"SELinux: {where} asks for type {options['type']}")
        for field in ("user", "role"):
            if options.get(field):
                found.append(f"SELinux: {where} sets {field}")
    for container in containers:
        mount = (container.get("securityContext") or {}).get("procMount")
        if mount not in (None, "Default"):
            found.append(f"/proc Mount Type: container {container['name']} uses {mount}")
    for where, profile in each("seccompProfile"):
        if (profile or {}).get("type") == "Unconfined":
            found.append(f"Seccomp: {where} is Unconfined")
    for sysctl in pod.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"Sysctls: {sysctl.get('name')} is not in the safe set")

    # --- Restricted ---
    for volume in spec.get("volumes") or []:
        kinds = [key for key in volume if key != "name"]
        if not set(kinds) <= RESTRICTED_VOLUMES:
            found.append(f"Volume Types: volume {volume['name']} is {', '.join(kinds)}")
    for container in containers:
        context = container.get("securityContext") or {}
        name = container["name"]
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(f"Privilege Escalation: container {name} does not set allowPrivilegeEscalation: false")
        # Running as Non-root: true on the pod, or on every container; false nowhere.
        if context.get("runAsNonRoot") is False or (
            context.get("runAsNonRoot") is not True and pod.get("runAsNonRoot") is not True
        ):
            found.append(f"Running as Non-root: container {name} may run as root (runAsNonRoot)")
        # Seccomp: set on the pod, or on every container; and never anything but these two.
        own = (context.get("seccompProfile") or {}).get("type")
        if own is None and (pod.get("seccompProfile") or {}).get("type") is None:
            found.append(f"Seccomp: container {name} has no seccompProfile (neither its own nor the pod's)")
        elif own is not None and own not in SECCOMP_TYPES:
            found.append(f"Seccomp: container {name} asks for {own}")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"Capabilities: container {name} does not drop ALL")
        for added in capabilities.get("add") or []:
            if added not in RESTRICTED_ADD:
                found.append(f"Capabilities: container {name} adds {added} (only NET_BIND_SERVICE may be added)")
    if pod.get("runAsNonRoot") is False:
        found.append("Running as Non-root: the pod sets runAsNonRoot: false")
    if "seccompProfile" in pod and (pod["seccompProfile"] or {}).get("type") not in SECCOMP_TYPES:
        found.append(f"Seccomp: the pod asks for {(pod['seccompProfile'] or {}).get('type')}")
    for where, user in each("runAsUser"):
        if user == 0:
            found.append(f"Running as Non-root user: {where} sets runAsUser: 0")
    return found
