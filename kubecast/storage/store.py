"""One object-storage API for every component: a local folder, S3, GCS or Azure Blob.

Object storage is the only state the components share.  Media objects are written once;
index objects (the timeline, an encoder's progress) are replaced whole by their single
writer, which obstore makes atomic on every backend (a local put writes a temporary file
and renames it).  Every key is checked before it reaches a backend, so that no URL or
resource name can address anything outside the store's root.
"""

from __future__ import annotations

import builtins
import errno
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError
from obstore.store import LocalStore, MemoryStore, ObjectStore, from_url

if TYPE_CHECKING:  # these exist only in obstore's stubs
    from obstore import ObjectMeta
    from obstore.store import RetryConfig

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._=-]*$")


class InvalidKey(ValueError):
    """A key that could escape the store or is not one kubecast writes."""


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") or not _SEGMENT.match(part) for part in parts):
        raise InvalidKey(f"invalid storage key: {key!r}")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    last_modified: datetime | None


def _info(meta: ObjectMeta) -> ObjectInfo:
    return ObjectInfo(
        key=meta["path"], size=meta["size"], etag=meta.get("e_tag"), last_modified=meta.get("last_modified")
    )


# A remote backend's own retries (obstore retries 5xx answers, resets and timeouts) are kept
# short: one call gives up within seconds (its default is three minutes), so that the caller,
# which knows whether to wait (an encoder's upload) or to answer with what it has (the
# endpoint), decides what happens next.  (The HTTP client options are left to the environment:
# passing any would drop the ones it sets, such as ``AWS_ALLOW_HTTP``.)
RETRY_CONFIG: RetryConfig = {
    "max_retries": 3,
    "retry_timeout": timedelta(seconds=10),
    "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=1), "base": 2},
}


def storage_full(error: BaseException) -> bool:
    """Whether a failed write failed because the local file system is full (ENOSPC)."""
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    text = str(error)
    return "No space left on device" in text or f"os error {errno.ENOSPC})" in text


def open_backend(url: str) -> ObjectStore:
    """``/path`` or ``file:///path`` -> local folder; ``memory://``; ``s3://``, ``gs://``, ``az://`` with
    credentials and endpoint from the environment, as obstore reads them (``AWS_ENDPOINT_URL``,
    ``AWS_ALLOW_HTTP``, ``AWS_ACCESS_KEY_ID`` …, ``GOOGLE_*``, ``AZURE_*``)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        root = Path(parsed.path if parsed.scheme else url).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        return LocalStore(root)
    if parsed.scheme == "memory":
        return MemoryStore()
    return from_url(url, retry_config=RETRY_CONFIG)


class Store:
    """Async and sync access to one store; keys are relative to the store's root."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._backend = open_backend(url)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # -- async (event-loop components: packager, endpoint) --
    async def get(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self._backend, check_key(key))
        except (NotFoundError, FileNotFoundError):
            return None
        return bytes(await result.bytes_async())

    async def get_range(self, key: str, start: int, end: int) -> bytes | None:
        """Bytes [start, end) of an object."""
        try:
            return bytes(await obstore.get_range_async(self._backend, check_key(key), start=start, end=end))
        except (NotFoundError, FileNotFoundError):
            return None

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            return _info(await obstore.head_async(self._backend, check_key(key)))
        except (NotFoundError, FileNotFoundError):
            return None

    async def put(self, key: str, data: bytes) -> None:
        await obstore.put_async(self._backend, check_key(key), data)

    async def list(self, prefix: str) -> list[ObjectInfo]:
        infos: list[ObjectInfo] = []
        stream = obstore.list(self._backend, check_key(prefix.rstrip("/")) + "/")
        async for batch in stream:
            infos.extend(_info(meta) for meta in batch)
        return infos

    async def delete(self, key: str) -> None:
        try:
            await obstore.delete_async(self._backend, check_key(key))
        except (NotFoundError, FileNotFoundError):
            pass

    # -- sync (encoder threads) --
    def get_sync(self, key: str) -> bytes | None:
        try:
            return bytes(obstore.get(self._backend, check_key(key)).bytes())
        except (NotFoundError, FileNotFoundError):
            return None

    def put_sync(self, key: str, data: bytes) -> None:
        obstore.put(self._backend, check_key(key), data)

    def put_new_sync(self, key: str, data: bytes) -> bool:
        """Create ``key`` unless it exists (conditional put on every backend); False when it did.

        The one primitive two writers need to agree on a value without a lock server: both
        try, one wins, the other reads the winner's value."""
        try:
            obstore.put(self._backend, check_key(key), data, mode="create")
        except AlreadyExistsError:
            return False
        return True

    def list_sync(self, prefix: str) -> builtins.list[ObjectInfo]:  # `list` here is the method above
        infos: list[ObjectInfo] = []
        for batch in obstore.list(self._backend, check_key(prefix.rstrip("/")) + "/"):
            infos.extend(_info(meta) for meta in batch)
        return infos

    def delete_sync(self, key: str) -> None:
        try:
            obstore.delete(self._backend, check_key(key))
        except (NotFoundError, FileNotFoundError):
            pass
