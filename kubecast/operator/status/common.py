"""What every resource's status shares: conditions in the metav1.Condition shape, the Secret
checks, an endpoint's base URL, and whether a write would change anything."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from kubecast.api import StreamingEndpoint
from kubecast.api.common import SecretKeyRef


def timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(
    previous: list[dict[str, Any]] | None,
    generation: int | None,
    now: datetime,
    *entries: tuple[str, bool | None, str, str],
) -> list[dict[str, Any]]:
    old = {c["type"]: c for c in previous or []}
    out = []
    for type_, status, reason, message in entries:
        value = "Unknown" if status is None else ("True" if status else "False")
        before = old.get(type_)
        moved = before is None or before.get("status") != value
        out.append(
            {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": timestamp(now) if moved or before is None else before["lastTransitionTime"],
                "observedGeneration": generation,
            }
        )
    return out


CHANNEL_CONDITIONS = ("Ready", "Reconciling", "Stalled")
# The packager's conditions a Channel shows.  Not its Ready (segments flowing: a different
# question from the Channel's Ready, and the same type) nor IngestConnected (already
# status.encoders.*.ingestConnected, and it flips with every reconnect of the publisher).
DATA_PLANE_CONDITIONS = ("KeyframesAligned", "InitSegmentsConsistent")

_ORDER = CHANNEL_CONDITIONS + DATA_PLANE_CONDITIONS


def replace_conditions(
    current: list[dict[str, Any]] | None, types: Iterable[str], replacements: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``current`` with the conditions of ``types`` taken from ``replacements`` only (one absent
    there is dropped) and every other kept as it is, in one fixed order: two writers that agree
    on the conditions send the same list, which ``contained`` compares."""
    types = set(types)
    merged = [c for c in current or [] if c.get("type") not in types] + list(replacements)
    return sorted(
        merged, key=lambda c: (_ORDER.index(c["type"]) if c.get("type") in _ORDER else len(_ORDER), c.get("type", ""))
    )


def channel_conditions(
    own: list[dict[str, Any]], previous: list[dict[str, Any]] | None, data_plane: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """A Channel's full conditions list from the reconcile side: ``own`` (Ready, Reconciling,
    Stalled) and the data-plane conditions carried over, ``data_plane`` when the caller knows
    newer ones than ``previous`` holds (what the stream report last derived), else those in
    ``previous``; any other type in ``previous`` is kept too."""
    carried = previous if data_plane is None else replace_conditions(previous, DATA_PLANE_CONDITIONS, data_plane)
    return replace_conditions(carried, CHANNEL_CONDITIONS, own)


def initial_conditions(generation: int | None, now: datetime) -> list[dict[str, Any]]:
    """Written on first sight, before anything is known."""
    return conditions(
        None,
        generation,
        now,
        ("Ready", None, "Pending", "reconciliation has not run yet"),
        ("Reconciling", True, "Pending", "reconciliation has not run yet"),
        ("Stalled", False, "Pending", ""),
    )


def secret_problems(
    references: list[tuple[str, SecretKeyRef, str]], secrets: dict[str, dict[str, Any] | None]
) -> str | None:
    """The ``SecretMissing`` message for a Channel's Secret references (``builders.secret_references``;
    ``secrets``: name -> the Secret, None when it does not exist), naming each missing Secret or
    key and what it is for, never a value; None when every one is there."""
    problems = []
    for purpose, ref, _ in references:
        secret = secrets.get(ref.name)
        if secret is None:
            problems.append(f"Secret {ref.name} ({purpose}) does not exist")
        elif ref.key not in (secret.get("data") or {}) and ref.key not in (secret.get("stringData") or {}):
            problems.append(f"Secret {ref.name} ({purpose}) has no key {ref.key}")
    return "; ".join(problems) or None


STORAGE_SECRET_MISSING = "StorageSecretMissing"
# The reasons that stop a Channel or StreamingEndpoint until a Secret exists: its pods would wait in
# ContainerCreating (a volume) or CreateContainerConfigError (envFrom) with nothing saying why.
WAITING_FOR_SECRET = ("SecretMissing", STORAGE_SECRET_MISSING)


def storage_secret_problem(
    name: str | None, namespace: str, secret: dict[str, Any] | None, *, pods: str = "encoder and packager pods"
) -> str | None:
    """The ``StorageSecretMissing`` message when the object storage credentials Secret (the chart's
    ``store.credentialsSecret``, every component's ``envFrom``) is configured and absent from the
    namespace; None when none is configured or it exists.  ``pods``: whose pods need it."""
    if name is None or secret is not None:
        return None
    return (
        f"Secret {name} (object storage credentials) does not exist in namespace {namespace}:"
        f" the {pods} take their storage credentials from it"
    )


def waiting_for_secret(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Stalled" and c.get("reason") in WAITING_FOR_SECRET for c in status.get("conditions", [])
    )


def endpoint_base(endpoint: StreamingEndpoint, namespace: str) -> str:
    """Where a StreamingEndpoint serves: its first custom host name, else its Service's name."""
    return f"http://{endpoint.spec.host_names[0] if endpoint.spec.host_names else f'{endpoint.name}.{namespace}.svc'}"


def contained(new: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Whether ``previous`` already holds everything in ``new`` (a merge patch would change nothing)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(previous.get(key), dict):
            if not contained(value, previous[key]):
                return False
        elif previous.get(key) != value:
            return False
    return True


# What a live stream or recording moves on every report, though nothing else changed: the
# newest segment numbers, the timeline's time, a recording's end.  A status write for these alone
# is made at most every PROGRESS_SECONDS (the reports' other news goes out at once), so that a
# steady stream costs one write per 10 minutes, not one per report.
PROGRESS_SECONDS = 600.0
PROGRESS_FIELDS = {"stream": ("updated",), "recording": ("end", "durationSeconds", "segments")}
ENCODER_PROGRESS_FIELDS = ("lastSegment", "segmentsTaken")


def without_progress(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` (a report's part of it) less its progress fields (``PROGRESS_FIELDS``)."""
    out = {
        key: (
            {k: v for k, v in value.items() if k not in PROGRESS_FIELDS.get(key, ())}
            if isinstance(value, dict)
            else value
        )
        for key, value in status.items()
    }
    if isinstance(out.get("encoders"), dict):
        out["encoders"] = {
            name: {k: v for k, v in (encoder or {}).items() if k not in ENCODER_PROGRESS_FIELDS}
            for name, encoder in out["encoders"].items()
        }
    return out


def progress_only(new: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Whether writing ``new`` over ``previous`` would change progress fields alone."""
    return contained(without_progress(new), previous)


class ReadyEvent(NamedTuple):
    """A Kubernetes Event for a change of the Ready condition."""

    type: str  # Normal or Warning
    reason: str
    message: str
    ready: str  # the new status of Ready: True, False or Unknown


def ready_event(old_status: Mapping[str, Any] | None, new_status: Mapping[str, Any]) -> ReadyEvent | None:
    """The Event a status change makes, or None (pure): one when Ready
    changes, except when a resource seen for the first time (Ready absent or Unknown) is simply
    progressing (Ready False, Reconciling True, Stalled False): a Channel just created is starting,
    which is no news, and at 1000 Channels that Warning was half of the Events of the start-up
    (bench/operator_scale.py prints them by reason).  A first sight that finds a problem (Stalled,
    such as a missing Secret) or a resource already Ready is still told.  Unknown is never told:
    only the first sight, which nothing has judged yet, says it."""
    new = {c["type"]: c for c in new_status.get("conditions", [])}
    before = {c["type"]: c["status"] for c in (old_status or {}).get("conditions", [])}.get("Ready")
    ready = new["Ready"]
    if before == ready["status"] or ready["status"] == "Unknown":
        return None
    progressing = (
        ready["status"] == "False"
        and new.get("Reconciling", {}).get("status") == "True"
        and new.get("Stalled", {}).get("status") != "True"
    )
    if before in (None, "Unknown") and progressing:
        return None
    return ReadyEvent(
        type="Normal" if ready["status"] == "True" else "Warning",
        reason=ready["reason"],
        message=ready["message"] or ready["reason"],
        ready=ready["status"],
    )
