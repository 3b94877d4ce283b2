"""Which children a Channel's periodic refresh applies again: pure.

A refresh that re-applied every child every 120 s would cost eight API writes per Channel each
time, though nothing changed (3.3 writes per second per 1000 Channels, measured by
bench/operator_scale.py).  So a refresh applies a child only when the operator now builds it
differently from what it last applied (a changed setting, say), or when it is a kind the
operator watches anyway (Deployments, Services) and the watch no longer has it.  The other kinds
(ConfigMaps, the PodDisruptionBudget, the relay's NetworkPolicy) are not watched: every
``FULL_APPLY_SECONDS`` the refresh applies everything, which brings back one deleted by hand.
What was applied is kept in the Channel's memo (in memory), so after a restart the first
reconcile applies everything again.  A StreamingEndpoint's refresh does the same, with its
Deployment the one kind watched.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

FULL_APPLY_SECONDS = 7200.0
WATCHED_KINDS = ("Deployment", "Service")

ChildKey = tuple[str, str]  # kind, name


def child_key(manifest: dict[str, Any]) -> ChildKey:
    return manifest["kind"], manifest["metadata"]["name"]


def fingerprint(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def needs_apply(
    manifest: dict[str, Any],
    *,
    applied: dict[ChildKey, str],
    watched: set[ChildKey],
    full: bool,
    watched_kinds: tuple[str, ...] = WATCHED_KINDS,
) -> bool:
    """Whether a refresh applies ``manifest``: on a full round, when it differs from what was last
    applied (``applied``: key -> fingerprint), or when its kind is watched (``watched_kinds``: the
    kinds whose objects of this owner the operator indexes) and ``watched`` (the keys the watch has)
    lacks it."""
    key = child_key(manifest)
    if full or applied.get(key) != fingerprint(manifest):
        return True
    return key[0] in watched_kinds and key not in watched
