"""What the Channel's request annotations (``kubecast.io/reset``, ``/slate``, ``/cue``) share: each
value is acted on once, and the operator remembers it in the Channel's kopf memo.

These are event handlers, not update handlers: kopf leaves the annotations under its own prefix
(``kubecast.io/``) out of what it compares, so a new value is no update for it.  Each event
costs a look at the memo.  A value is done once it is written to the channel's control record,
or once it is refused (a Warning Event, a log line and ``kubecast_operator_requests_refused_total``,
once per value: the next event must not refuse it again).  When the store cannot be written, the
value is not remembered, and the Channel's next event tries again.  Only annotations are read, so
a request never restarts a pod.  (A handler's id must not be the annotation's name: kopf keeps a
handler's progress in ``kubecast.io/<id>``.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf
from prometheus_client import Counter

from .common import GROUP_VERSION

REFUSED = Counter(
    "kubecast_operator_requests_refused_total",
    "Channel request annotations refused (a Warning Event each), by annotation and reason",
    ["annotation", "reason"],
)


class Refused(Exception):
    """A value that cannot be followed; the message is for the Warning Event."""

    def __init__(self, event_reason: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.event_reason = event_reason  # the Event's reason (CamelCase)
        self.reason = reason  # the metric's label


@dataclass(frozen=True)
class Done:
    """A value followed: the Normal Event that says so."""

    reason: str
    message: str


# (value, spec, namespace, name) -> the Event of a value written (None: the record already said so)
Follow = Callable[[str, Mapping[str, Any], str, str], Awaitable[Done | None]]


async def act_once(
    annotation: str,
    memo_key: str,
    follow: Follow,
    *,
    event: kopf.RawEvent,
    body: kopf.Body,
    spec: Mapping[str, Any],
    annotations: kopf.Annotations,
    name: str,
    namespace: str,
    memo: kopf.Memo,
    logger: kopf.Logger,
) -> None:
    value = annotations[annotation]
    if event.get("type") == "DELETED" or memo.get(memo_key) == value:
        return
    try:
        done = await follow(value, spec, namespace, name)
    except Refused as refused:
        memo[memo_key] = value
        REFUSED.labels(annotation, refused.reason).inc()
        kopf.event(body, type="Warning", reason=refused.event_reason, message=str(refused))
        logger.warning("%s: %s", name, refused)
        return
    except Exception as error:  # noqa: BLE001 - the Channel's next event tries again
        logger.warning("cannot write %s of %s to the store (%s); trying again", annotation, name, error)
        return
    memo[memo_key] = value
    if done is not None:
        kopf.event(body, type="Normal", reason=done.reason, message=done.message)
        logger.info("%s", done.message)


def follow_annotation(annotation: str, *, handler_id: str, memo_key: str, follow: Follow) -> None:
    """Registers the Channel event handler that follows ``annotation`` once per value (``act_once``)."""

    @kopf.on.event(*GROUP_VERSION, "channels", id=handler_id, annotations={annotation: kopf.PRESENT})  # type: ignore[arg-type]
    async def follow_request(
        event: kopf.RawEvent,
        body: kopf.Body,
        spec: kopf.Spec,
        annotations: kopf.Annotations,
        name: str,
        namespace: str,
        memo: kopf.Memo,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        await act_once(
            annotation,
            memo_key,
            follow,
            event=event,
            body=body,
            spec=spec,
            annotations=annotations,
            name=name,
            namespace=namespace,
            memo=memo,
            logger=logger,
        )
