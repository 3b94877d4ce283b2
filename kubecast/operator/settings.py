"""What the operator knows beyond the resources: images, storage, where it runs."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

DEFAULT_IMAGE = "ghcr.io/kubecast/{component}:0.1.0"


@dataclass(frozen=True)
class OperatorSettings:
    encoder_image: str = DEFAULT_IMAGE.format(component="encoder")
    packager_image: str = DEFAULT_IMAGE.format(component="packager")
    store_url: str = "s3://kubecast/media"
    store_credentials_secret: str | None = None  # its keys become environment variables (AWS_*, GOOGLE_*, AZURE_*)
    ingest_domain: str | None = None  # used in ingest URLs when Services have no external address yet
    scheduling: "PodScheduling" = field(default_factory=lambda: PodScheduling())

    @classmethod
    def from_environment(cls) -> "OperatorSettings":
        return cls(
            encoder_image=os.environ.get("KUBECAST_ENCODER_IMAGE", cls.encoder_image),
            packager_image=os.environ.get("KUBECAST_PACKAGER_IMAGE", cls.packager_image),
            store_url=os.environ.get("KUBECAST_STORE_URL", cls.store_url),
            store_credentials_secret=os.environ.get("KUBECAST_STORE_SECRET") or None,
            ingest_domain=os.environ.get("KUBECAST_INGEST_DOMAIN") or None,
            scheduling=PodScheduling.from_json(os.environ.get("KUBECAST_POD_SCHEDULING") or "{}"),
        )


@dataclass(frozen=True)
class PodScheduling:
    """Where the pods the operator creates may run, from the chart's ``workloads`` and
    ``imagePullSecrets`` values (KUBECAST_POD_SCHEDULING, JSON).  No affinity: encoder pods
    carry their own anti-affinity, which a user's affinity would replace."""

    image_pull_secrets: tuple[str, ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[str, ...] = ()  # each a JSON object, so the settings stay hashable and frozen
    priority_class_name: str | None = None

    @classmethod
    def from_json(cls, text: str) -> "PodScheduling":
        try:
            values = json.loads(text)
        except ValueError as error:
            raise ValueError(f"KUBECAST_POD_SCHEDULING is not JSON: {error}") from error
        return cls(
            image_pull_secrets=tuple(values.get("imagePullSecrets") or ()),
            node_selector=tuple(sorted((values.get("nodeSelector") or {}).items())),
            tolerations=tuple(json.dumps(t, sort_keys=True) for t in values.get("tolerations") or ()),
            priority_class_name=values.get("priorityClassName") or None,
        )

    def pod_fields(self) -> dict[str, Any]:
        """The PodSpec fields to merge into every pod template; only those that are set."""
        fields: dict[str, Any] = {}
        if self.image_pull_secrets:
            fields["imagePullSecrets"] = [{"name": name} for name in self.image_pull_secrets]
        if self.node_selector:
            fields["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            fields["tolerations"] = [json.loads(t) for t in self.tolerations]
        if self.priority_class_name:
            fields["priorityClassName"] = self.priority_class_name
        return fields
