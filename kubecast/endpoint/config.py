"""The endpoint's config file (``kubecast endpoint --config endpoint.json``), read at start.

The file is ``kubecast.api.components.EndpointConfig``, written by the operator (a ConfigMap)
and by ``kubecast up`` (its run folder) from the StreamingEndpoint and the Channels.  It names
every secret by the file holding it (a Secret volume on a cluster, a 0600 file locally); the
values are read here, once, and never logged.  Anything wrong (an unknown or mistyped field, a
missing or empty key file, a master key that is too short) is a ``ConfigError`` naming the
field or the file, so the process stops at start with that message instead of serving
something other than what was asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from pydantic import ValidationError

from kubecast.api.components import ContentProtectionConfig, EndpointConfig

from .access import AccessPolicy, networks
from .protection import Protection


class ConfigError(ValueError):
    """What is wrong with the config, for the operator's log; never a secret's value."""


def parse(text: str | bytes) -> EndpointConfig:
    try:
        return EndpointConfig.model_validate_json(text)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(document)'}: {problem['msg']}"
            for problem in error.errors(include_input=False)
        )
        raise ConfigError(problems) from None


def read_secret(path: str, what: str) -> bytes:
    """The secret in the file at ``path`` without surrounding white space (a trailing newline)."""
    try:
        value = Path(path).read_bytes().strip()
    except OSError as error:
        raise ConfigError(f"the {what} file {path}: {error.strerror or error}") from None
    if not value:
        raise ConfigError(f"the {what} file {path} is empty")
    return value


def access_policy(config: EndpointConfig) -> AccessPolicy:
    return AccessPolicy(
        allowed=networks(config.allowed_ips),
        preview_allowed={preview.channel: networks(preview.allowed_ips) for preview in config.preview_allowed_ips},
        trusted_proxies=networks(config.trusted_proxies),
        signing_keys={key.id: read_secret(key.file, f"signing key {key.id}") for key in config.signing_keys},
        origin_header=config.origin_auth.header if config.origin_auth is not None else None,
        origin_secret=(
            read_secret(config.origin_auth.value_file, "origin authentication")
            if config.origin_auth is not None
            else None
        ),
        cross_site_origins=tuple(config.cross_site_origins),
    )


def protection(config: ContentProtectionConfig | None) -> Protection | None:
    if config is None:
        return None
    try:
        return Protection.from_config(
            config,
            master_key=read_secret(config.master_key_file, "content protection master key").decode(),
            jwt_key=(
                read_secret(config.key_delivery.jwt_key_file, "key delivery JWT key")
                if config.key_delivery is not None
                else None
            ),
            cpix_authorization=(
                read_secret(config.cpix.credentials_file, "DRM key server credentials").decode()
                if config.cpix is not None and config.cpix.credentials_file is not None
                else None
            ),
        )
    except UnicodeDecodeError:
        raise ConfigError("a content protection key file is not text") from None
    except ValueError as error:  # the master key's form; the messages name no key
        raise ConfigError(str(error)) from None


class Settings(NamedTuple):
    """What an endpoint's config makes it do."""

    policy: AccessPolicy
    protection: Protection | None
    hls_cue_tags: bool  # ad breaks also as EXT-X-CUE-OUT/-CONT/-IN in HLS media playlists


def load(path: str | Path) -> Settings:
    """What the endpoint at ``path``'s config enforces; ConfigError naming what is wrong."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(error.strerror or str(error)) from None
    config = parse(text)
    return Settings(access_policy(config), protection(config.content_protection), config.hls_cue_tags)
