"""Shared pieces of the resource models: the camelCase wire shape and small value types."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Final, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "kubecast.io"
VERSION = "v1alpha1"
API_VERSION: Final = (
    "kubecast.io/v1alpha1"  # GROUP/VERSION, spelt out so that it types as the Literal the models declare
)

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


Cidr = Annotated[
    str, AfterValidator(_check_cidr), Field(description="An IPv4/IPv6 address or CIDR range, e.g. 10.0.0.0/8.")
]
Name = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, max_length=63)]


@dataclass(frozen=True)
class NameRules:
    """What a kind's ``metadata.name`` must be for every child the operator names after it.
    The API server checks a custom resource's name only as a path segment (capitals, dots, 200
    characters pass), so these CEL rules go into the CRD; ``check`` runs the same ones, with the
    same messages, for ``kubecast up``."""

    kind: str
    max_length: int
    first_letter: bool
    why: str

    def cel(self) -> list[dict[str, str]]:
        rules = [
            {
                "rule": f"self.metadata.name.size() <= {self.max_length}",
                "message": f"a {self.kind} name may have at most {self.max_length} characters: {self.why}",
            },
            {
                "rule": f"self.metadata.name.matches('{DNS_LABEL_PATTERN}')",
                "message": f"a {self.kind} name must be lower-case letters, digits and '-', starting and ending with a "
                "letter or digit",
            },
        ]
        if self.first_letter:
            rules.append(
                {
                    "rule": "!self.metadata.name.matches('^[0-9]')",
                    "message": f"a {self.kind} name must start with a letter, not a digit: it names Services, and a "
                    "Service name must (RFC 1035)",
                }
            )
        return rules

    def json_schema_extra(self) -> JsonDict:
        """The rules as the CRD's ``x-kubernetes-validations``, for a model's ``json_schema_extra``."""
        return {"x-kubernetes-validations": [dict(rule) for rule in self.cel()]}

    def check(self, name: str) -> None:
        verdicts = (len(name) <= self.max_length, re.match(DNS_LABEL_PATTERN, name) is not None, not name[:1].isdigit())
        for rule, ok in zip(self.cel(), verdicts):
            if not ok:
                raise ValueError(f"metadata.name {name!r}: {rule['message']}")


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


class NamedResource(WireModel):
    """What every kind shares: a ``metadata.name`` that ``name_rules`` admit (each kind also puts
    the same rules into its CRD through ``model_config``, so the cluster and ``kubecast up`` agree)."""

    name_rules: ClassVar[NameRules]
    if TYPE_CHECKING:  # each kind declares it after apiVersion and kind, the order of the wire and the CRD
        metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @model_validator(mode="after")
    def _name_makes_valid_children(self) -> Self:
        self.name_rules.check(self.metadata.name)
        return self


def whole_milliseconds(seconds: float, name: str) -> float:
    """``seconds``, refused unless it is a whole number of milliseconds: the unit the encoders
    are given durations in (``segment_duration_ms``, ``part_duration_ms``)."""
    if abs(seconds * 1000 - round(seconds * 1000)) > 1e-6:
        raise ValueError(f"{name} must be a whole number of milliseconds")
    return seconds
