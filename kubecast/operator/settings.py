"""What the operator knows beyond the resources: images, storage, where it runs."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_IMAGE = "ghcr.io/kubecast/{component}:0.1.0"


@dataclass(frozen=True)
class OperatorSettings:
    encoder_image: str = DEFAULT_IMAGE.format(component="encoder")
    packager_image: str = DEFAULT_IMAGE.format(component="packager")
    store_url: str = "s3://kubecast/media"
    store_credentials_secret: str | None = None  # its keys become environment variables (AWS_*, GOOGLE_*, AZURE_*)
    ingest_domain: str | None = None  # used in ingest URLs when Services have no external address yet

    @classmethod
    def from_environment(cls) -> "OperatorSettings":
        return cls(
            encoder_image=os.environ.get("KUBECAST_ENCODER_IMAGE", cls.encoder_image),
            packager_image=os.environ.get("KUBECAST_PACKAGER_IMAGE", cls.packager_image),
            store_url=os.environ.get("KUBECAST_STORE_URL", cls.store_url),
            store_credentials_secret=os.environ.get("KUBECAST_STORE_SECRET") or None,
            ingest_domain=os.environ.get("KUBECAST_INGEST_DOMAIN") or None,
        )
