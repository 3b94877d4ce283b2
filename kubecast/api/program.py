"""The Program resource: a recorded window of a channel's timeline (DVR while live, VOD after)."""

from __future__ import annotations

import enum
import re
from datetime import timedelta
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .common import API_VERSION, Name, NamedResource, NameRules, ObjectMeta, WireModel

_ISO_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_iso_duration(text: str) -> timedelta:
    """``PT1H30M`` -> timedelta; days, hours, minutes, seconds only (months and years have no fixed length)."""
    match = _ISO_DURATION.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"not an ISO-8601 duration such as PT1H or PT30M: {text!r}")
    parts = {key: float(value) for key, value in match.groupdict().items() if value}
    try:
        return timedelta(**parts)
    except OverflowError:  # digits beyond what a timedelta holds (about 2.7 million years)
        raise ValueError(f"ISO-8601 duration too long: {text[:40]!r}") from None


# First path elements the streaming endpoint serves itself; a program's locator is any other.
RESERVED_LOCATORS = {"live", "preview", "status", "static", "time", "metrics", "healthz"}


# A Program makes no children, but its name is a URL path element and a storage key: the same
# DNS label the model's metadata requires (ObjectMeta checks it), in the CRD too.
NAME_RULES = NameRules("Program", 63, first_letter=False, why="it is a URL path element and a storage key")


class ProgramState(str, enum.Enum):
    RUNNING = "Running"
    STOPPED = "Stopped"


class ProgramSpec(WireModel):
    channel_name: Name = Field(description="The Channel (same namespace) this program records.")
    archive_window: str = Field(default="PT1H", description="ISO-8601 duration kept behind the live edge (DVR depth).")
    manifest_name: str = Field(
        default="index",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="Manifest file name without extension.",
    )
    locator: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="URL path prefix; defaults to the program name.",
    )
    state: ProgramState = Field(
        default=ProgramState.RUNNING, description="Running records; Stopped keeps the recording as on-demand content."
    )

    @field_validator("archive_window")
    @classmethod
    def _parse_window(cls, value: str) -> str:
        window = parse_iso_duration(value)
        if window < timedelta(seconds=2):
            raise ValueError("archiveWindow must be at least two seconds")
        if window > timedelta(days=30):
            raise ValueError("archiveWindow must be at most 30 days")
        return value

    @field_validator("locator")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value is not None and value.lower() in RESERVED_LOCATORS:
            raise ValueError(f"locator {value!r} is a path of the streaming endpoint itself; choose another")
        return value

    @property
    def archive_window_seconds(self) -> float:
        return parse_iso_duration(self.archive_window).total_seconds()


class Program(NamedResource):
    """A recorded window of a channel: a DVR window while live, on-demand content after it stops."""

    model_config = ConfigDict(json_schema_extra=NAME_RULES.json_schema_extra())
    name_rules = NAME_RULES

    api_version: Literal["kubecast.io/v1alpha1"] = API_VERSION
    kind: Literal["Program"] = "Program"
    metadata: ObjectMeta
    spec: ProgramSpec

    @model_validator(mode="after")
    def _default_locator_not_reserved(self) -> "Program":
        if self.spec.locator is None and self.metadata.name in RESERVED_LOCATORS:
            raise ValueError(
                f"a program named {self.metadata.name!r} needs spec.locator: its name is a path of the streaming "
                "endpoint"
            )
        return self
