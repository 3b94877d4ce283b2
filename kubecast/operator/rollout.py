"""Where a Channel's Deployments stand against the spec the operator built for them.

A Deployment has rolled out a spec only when its pod template carries that spec's hash, the
Deployment controller has seen the generation that template made (``status.observedGeneration``;
until then ``updatedReplicas`` and ``readyReplicas`` still describe the previous template), every
pod runs that template and is ready.  ``Reconciling`` stays true until every Deployment has, so a
ladder change is not reported done while encoder B still runs the old ladder.

Encoder B waits until A has rolled out (one of the pair is always live).  The Deployment event
that says so is what starts B (``second_may_roll``), not a timer.

Pure: the handlers feed it the Deployments as the watch reports them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SPEC_HASH = "kubecast.io/spec-hash"


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


@dataclass(frozen=True)
class DeploymentState:
    """What a Deployment says about its rollout (the fields ``kubectl rollout status`` reads)."""

    spec_hash: str | None  # the template's kubecast.io/spec-hash
    generation: int  # metadata.generation: bumped by the API server on every spec change
    observed_generation: int  # the generation the Deployment controller has acted on
    desired: int  # spec.replicas
    replicas: int  # status.replicas: pods of any template
    updated: int  # status.updatedReplicas: pods of the current template
    ready: int  # status.readyReplicas

    @classmethod
    def of(cls, deployment: Mapping[str, Any]) -> DeploymentState:
        spec = deployment.get("spec") or {}
        annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
        status = deployment.get("status") or {}
        desired = spec.get("replicas")
        return cls(
            spec_hash=annotations.get(SPEC_HASH),
            generation=_int((deployment.get("metadata") or {}).get("generation")),
            observed_generation=_int(status.get("observedGeneration")),
            desired=desired if isinstance(desired, int) else 1,
            replicas=_int(status.get("replicas")),
            updated=_int(status.get("updatedReplicas")),
            ready=_int(status.get("readyReplicas")),
        )

    @property
    def serving(self) -> bool:
        """A pod is ready: the encoder is live, whichever spec it runs."""
        return self.ready >= 1 and self.updated >= 1

    def rolled_out(self, wanted_hash: str | None) -> bool:
        """Every pod runs the spec of ``wanted_hash`` and is ready."""
        return (
            self.spec_hash == wanted_hash
            and self.observed_generation >= self.generation
            and self.updated >= self.desired
            and self.replicas == self.updated
            and self.ready >= self.desired
        )


def stamped(deployment: dict[str, Any]) -> dict[str, Any]:
    """``deployment`` with its template's spec hash (``SPEC_HASH``) over the template itself, which
    holds the hash of the config files its pods read at start (a new one must restart them): a new
    image or scheduling setting is a new spec too, which rolls encoder A before B."""
    template = deployment["spec"]["template"]
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    template["metadata"].setdefault("annotations", {})[SPEC_HASH] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return deployment


def wanted_hashes(children: list[dict[str, Any]]) -> dict[str, str]:
    """Deployment name -> the spec hash the operator built into its template."""
    wanted = {}
    for child in children:
        if child["kind"] == "Deployment":
            annotations = child["spec"]["template"]["metadata"].get("annotations") or {}
            if SPEC_HASH in annotations:
                wanted[child["metadata"]["name"]] = annotations[SPEC_HASH]
    return wanted


def not_rolled_out(wanted: Mapping[str, str], observed: Mapping[str, DeploymentState | None]) -> list[str]:
    """The Deployments (in ``wanted``'s order) that have not rolled out the spec built for them."""
    return [
        name
        for name, spec_hash in wanted.items()
        if (state := observed.get(name)) is None or not state.rolled_out(spec_hash)
    ]


def second_may_roll(
    first_wanted: str, second_wanted: str, first: DeploymentState | None, second: DeploymentState | None
) -> bool:
    """Whether the second encoder may be given its new spec (hash ``second_wanted``): it does not
    exist yet, already has it (a re-apply changes nothing), or the first has rolled out its own."""
    if second is None or second.spec_hash == second_wanted:
        return True
    return first is not None and first.rolled_out(first_wanted)


def newer(one: DeploymentState | None, other: DeploymentState | None) -> DeploymentState | None:
    """The later of two views of one Deployment (``other`` when they tie, or ``one`` is None)."""
    if one is None or (
        other is not None and (other.generation, other.observed_generation) >= (one.generation, one.observed_generation)
    ):
        return other
    return one
