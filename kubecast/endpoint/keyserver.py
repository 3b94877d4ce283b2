"""The DRM key server client: one CPIX exchange per channel and scheme, then from memory.

With ``contentProtection.cpix`` set, the Common Encryption key of a channel comes from the
key server (``kubecast.media.cpix``), asked for the key id every replica derives from the
master key, so every replica gets the same key for the same content.  The answer is kept in
memory for the process's life (a key server gives the same key for the same key id; a new key
means a new key id), and concurrent requests for the same channel share one exchange.

A key server that cannot be reached, refuses, or answers something unusable makes the
requests that need the key fail with 503 (``Retry-After``) and is not asked again for a few
seconds; nothing else the endpoint serves is affected.  Log lines name the channel and the
reason, never a key or the credentials.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import aiohttp

from kubecast.media.cpix import MAX_DOCUMENT, CpixAnswer, CpixError, DrmSystem, cpix_request, parse_cpix_answer

log = logging.getLogger("kubecast.endpoint.keyserver")
TIMEOUT_SECONDS = 10.0
RETRY_SECONDS = 5.0
MAX_CACHED = 10_000


class KeyServerUnavailable(RuntimeError):
    """The key server gave no usable answer (the request that needed it gets a 503)."""


@dataclass
class KeyServer:
    url: str
    systems: list[DrmSystem]
    authorization: str | None = field(default=None, repr=False)
    timeout_seconds: float = TIMEOUT_SECONDS
    _answers: dict[tuple[str, bytes, str], CpixAnswer] = field(default_factory=dict, repr=False)
    _pending: dict[tuple[str, bytes, str], asyncio.Task[CpixAnswer]] = field(default_factory=dict, repr=False)
    _failed_until: dict[tuple[str, bytes, str], float] = field(default_factory=dict, repr=False)
    exchanges: int = 0  # CPIX requests sent (the tests read it)

    async def answer(self, *, content_id: str, key_id: bytes, scheme: str) -> CpixAnswer:
        """The key server's answer for ``key_id`` of ``content_id``, asked once per process."""
        wanted = (content_id, key_id, scheme)
        if (found := self._answers.get(wanted)) is not None:
            return found
        if self._failed_until.get(wanted, 0.0) > time.monotonic():
            raise KeyServerUnavailable("the key server failed a moment ago")
        task = self._pending.get(wanted)
        if task is None:
            task = asyncio.ensure_future(self._exchange(content_id, key_id, scheme))
            self._pending[wanted] = task
            task.add_done_callback(lambda done: self._settle(wanted, done))
        # shielded: one viewer giving up does not cancel the exchange the others wait for
        return await asyncio.shield(task)

    def _settle(self, wanted: tuple[str, bytes, str], done: asyncio.Task[CpixAnswer]) -> None:
        self._pending.pop(wanted, None)
        if done.cancelled() or done.exception() is not None:
            self._failed_until[wanted] = time.monotonic() + RETRY_SECONDS
            return
        if len(self._answers) >= MAX_CACHED:
            self._answers.pop(next(iter(self._answers)))
        self._answers[wanted] = done.result()

    async def _exchange(self, content_id: str, key_id: bytes, scheme: str) -> CpixAnswer:
        body = cpix_request(content_id=content_id, key_id=key_id, scheme=scheme, systems=self.systems)
        headers = {"Content-Type": "application/xml", "X-Speke-Version": "2.0"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        self.exchanges += 1
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_seconds)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(self.url, data=body, headers=headers) as response,
            ):
                text = await response.content.read(MAX_DOCUMENT + 1)
                if response.status != 200:
                    raise KeyServerUnavailable(f"the key server answered HTTP {response.status}")
            answer = parse_cpix_answer(text, key_id=key_id, systems=self.systems)
        except CpixError as error:
            log.error("key server answer for channel %s unusable: %s", content_id, error)
            raise KeyServerUnavailable(str(error)) from None
        except (TimeoutError, aiohttp.ClientError) as error:
            log.error("key server unreachable for channel %s: %s", content_id, type(error).__name__)
            raise KeyServerUnavailable("the key server is unreachable") from None
        except KeyServerUnavailable as error:
            log.error("key server refused channel %s: %s", content_id, error)
            raise
        log.info(
            "key server gave key id %s for channel %s (%s)",
            key_id.hex(),
            content_id,
            ", ".join(s.system.value for s in answer.signals),
        )
        return answer
