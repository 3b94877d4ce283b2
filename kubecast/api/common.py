"""Shared pieces of the resource models: the camelCase wire shape and small value types."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "kubecast.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# DNS-1123 label: what Kubernetes accepts as a name, and what is safe in a URL path and a
# storage key (no slash, no dot-dot), which is why every name reaching storage is one.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class WireModel(BaseModel):
    """camelCase on the wire (YAML, JSON, the CRD), snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
    )


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as error:
        raise ValueError(f"not an IP address or CIDR range: {value!r}") from error
    return value


Cidr = Annotated[str, AfterValidator(_check_cidr), Field(description="An IPv4/IPv6 address or CIDR range, e.g. 10.0.0.0/8.")]
Name = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, max_length=63)]


class SecretKeyRef(WireModel):
    """A key of a Secret in the resource's namespace (locally: a Secret document in the same manifests)."""

    name: Name = Field(description="Name of the Secret.")
    key: str = Field(description="Key inside the Secret's data.", min_length=1, max_length=253)


class ObjectMeta(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: Name
    namespace: str = "default"
    generation: int | None = None
    uid: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
