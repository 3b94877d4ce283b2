"""The streaming endpoint's access policy file, from a StreamingEndpoint and the Channels it
serves (pure; the operator puts it in a ConfigMap, ``kubecast up`` in its run folder, and
``kubecast endpoint --access`` reads it: see ``kubecast.endpoint.access``).

Secrets never enter the document: each key is named by the file it will be found in, which
``secret_file(purpose, ref)`` chooses (a Secret volume's path on a cluster, a 0600 file locally).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .channel import Channel
from .common import SecretKeyRef
from .endpoint import StreamingEndpoint

SecretFile = Callable[[str, SecretKeyRef], str]  # (file name, reference) -> path of the file holding it


def secret_files(endpoint: StreamingEndpoint) -> list[tuple[str, SecretKeyRef]]:
    """(file name, reference) of every Secret key the endpoint reads: signing keys, origin secret."""
    access, cdn = endpoint.spec.access_control, endpoint.spec.cdn
    files = [(f"signing-key-{key.id}", key.secret_ref) for key in access.signing_keys]
    if cdn.origin_authentication is not None:
        files.append(("origin-auth", cdn.origin_authentication.secret_ref))
    return files


def access_document(
    endpoint: StreamingEndpoint | None, channels: Iterable[Channel], secret_file: SecretFile
) -> dict[str, Any]:
    """The policy document; ``endpoint`` None (no StreamingEndpoint, local mode) applies only
    the Channels' preview allow-lists."""
    document: dict[str, Any] = {
        "previewAllowedIps": {c.name: list(c.spec.preview.allowed_ips) for c in channels if c.spec.preview.allowed_ips}
    }
    if endpoint is None:
        return document
    access, cdn = endpoint.spec.access_control, endpoint.spec.cdn
    document.update(
        {
            "allowedIps": list(access.allowed_ips),
            "trustedProxies": list(access.trusted_proxies),
            "signingKeys": {
                key.id: secret_file(f"signing-key-{key.id}", key.secret_ref) for key in access.signing_keys
            },
            "crossSiteOrigins": list(endpoint.spec.cross_site_origins),
        }
    )
    if (origin := cdn.origin_authentication) is not None:
        document["originAuth"] = {
            "header": origin.header_name,
            "valueFile": secret_file("origin-auth", origin.secret_ref),
        }
    return document
