"""``kubecast sign``: a signed URL (or a bare token) for a StreamingEndpoint that requires them.

The key comes from the manifests (the StreamingEndpoint's ``spec.accessControl.signingKeys``
and the Secret documents they name, the newest key unless ``--key-id`` says otherwise) or
from a file (``--key-file``, e.g. what ``kubectl get secret`` decodes to).  The key itself is
never printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from urllib.parse import urlsplit, urlunsplit

from kubecast.api import ManifestError, load_paths
from kubecast.media.tokens import sign

TOKEN_PREFIX = "/t/"


def scope_of_path(path: str) -> str:
    """The narrowest scope that opens ``path``: its channel, else its program's locator."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 2 and parts[0] in ("live", "preview"):
        return f"channel:{parts[1]}"
    if parts:
        return f"program:{parts[0]}"
    raise ValueError("the URL has no path to take a scope from; give --scope")


def signed_url(url: str, token: str) -> str:
    """``url`` with the token as its first path element."""
    parts = urlsplit(url)
    return urlunsplit(
        (parts.scheme, parts.netloc, f"{TOKEN_PREFIX}{token}{parts.path or '/'}", parts.query, parts.fragment)
    )


def key_from_manifests(paths: list[str], endpoint: str | None, key_id: str | None) -> tuple[str, bytes]:
    manifests = load_paths(paths)
    endpoints = [e for e in manifests.endpoints.values() if endpoint in (None, e.name)]
    if not endpoints:
        raise ManifestError(f"no StreamingEndpoint{' named ' + repr(endpoint) if endpoint else ''} in the manifests")
    if len(endpoints) > 1:
        raise ManifestError("several StreamingEndpoints in the manifests; name one with --endpoint")
    keys = endpoints[0].spec.access_control.signing_keys
    if not keys:
        raise ManifestError(
            f"StreamingEndpoint {endpoints[0].name} has no spec.accessControl.signingKeys: its URLs need no token"
        )
    chosen = keys[-1] if key_id is None else next((k for k in keys if k.id == key_id), None)
    if chosen is None:
        raise ManifestError(f"StreamingEndpoint {endpoints[0].name} has no signing key {key_id!r}")
    return chosen.id, manifests.secret_value(chosen.secret_ref.name, chosen.secret_ref.key).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kubecast sign", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "url",
        nargs="?",
        help="the URL to sign, e.g. http://127.0.0.1:8080/live/demo/index.m3u8 (without it: the token only)",
    )
    parser.add_argument(
        "-f", "--file", action="append", default=[], help="manifest file holding the StreamingEndpoint and its Secrets"
    )
    parser.add_argument("--endpoint", help="the StreamingEndpoint's name (when the manifests hold several)")
    parser.add_argument(
        "--key-id", help="the key to sign with (default: the last of signingKeys; required with --key-file)"
    )
    parser.add_argument("--key-file", help="file holding the key instead of the manifests")
    parser.add_argument(
        "--scope", help="channel:<name>, program:<locator> or prefix:/<path> (default: the URL's channel or program)"
    )
    parser.add_argument("--ttl", type=int, default=3600, help="seconds the token stays valid (default 3600)")
    args = parser.parse_args(argv)
    try:
        if args.key_file:
            if not args.key_id:
                parser.error("--key-file needs --key-id")
            with open(args.key_file, "rb") as file:
                key_id, key = args.key_id, file.read().strip()
        elif args.file:
            key_id, key = key_from_manifests(args.file, args.endpoint, args.key_id)
        else:
            parser.error("give the key: -f MANIFESTS, or --key-file FILE --key-id ID")
        if args.scope is None and args.url is None:
            parser.error("give --scope, or a URL to take it from")
        scope = args.scope or scope_of_path(urlsplit(args.url).path)
        if args.ttl <= 0:
            parser.error("--ttl must be positive")
        token = sign(key=key, key_id=key_id, scope=scope, expires=int(time.time()) + args.ttl)
    except (ManifestError, ValueError, OSError) as error:
        print(f"kubecast sign: {error}", file=sys.stderr)
        return 2
    print(signed_url(args.url, token) if args.url else token)
    return 0
