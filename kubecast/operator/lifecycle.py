"""The ends of things: children pruned when the spec stops asking for them, Programs released from
the store when they are deleted, and a Channel's media deleted with it under ``deletionPolicy:
Delete``.

Deletion never waits for the operator except under ``deletionPolicy: Delete``: that Channel
carries kopf's finalizer (the ``on.delete`` handler below requires it only for such Channels,
and kopf removes it again when the policy goes back to Retain), because its media must go
before the object does and nobody else would delete it.  Everything else is done without a
finalizer: a Program deleted while the operator is down is released by the next reconcile of
its Channel (``release_orphans``), and children go with their owner through the garbage collector.

The handlers take ``namespace: str``: every kind they watch is namespaced, so kopf passes a str,
though its handler protocols allow None (hence the ``type: ignore[arg-type]`` on them).
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from kubecast.api import Program
from kubecast.api.loader import ManifestError

from .handlers.common import GROUP_VERSION, api, parse
from .pruning import CHILDREN_OF, OWNER_LABEL, owned, prunable
from .store_io import delete_channel_media, published_programs, unpublish_program, unpublish_record


async def prune(
    owner_kind: str, name: str, namespace: str, uid: str, built: list[dict[str, Any]], logger: kopf.Logger
) -> None:
    """Delete the children of the resource (``owner_kind``/``name``, ``uid``) that ``built`` no longer has."""
    for kind in CHILDREN_OF[owner_kind]:
        existing = await api().list(
            kind.api_version, kind.kind, namespace, label_selector=f"{OWNER_LABEL[owner_kind]}={name}"
        )
        for child, child_uid in prunable(kind, existing, built, uid):
            logger.info("pruning %s %s: the spec no longer asks for it", kind.kind, child)
            await api().delete(kind.api_version, kind.kind, namespace, child, uid=child_uid)


@kopf.index(*GROUP_VERSION, "programs")  # type: ignore[arg-type]
async def channel_programs(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, Any], str]:
    return {(namespace, spec.get("channelName")): name}


@kopf.on.event(*GROUP_VERSION, "programs", id="release")  # type: ignore[arg-type]
async def release_program(event: kopf.RawEvent, body: kopf.Body, namespace: str, logger: kopf.Logger, **_: Any) -> None:
    """A deleted Program leaves the store: its packager then releases the recording.  If this
    fails, or the operator was down, ``release_orphans`` does it later."""
    if event.get("type") != "DELETED":
        return
    try:
        program = parse(body)
    except (ManifestError, ValidationError):
        return  # it was never valid, so it was never published
    assert isinstance(program, Program)  # the body of a programs event
    try:
        await unpublish_program(program, namespace)
    except Exception as error:  # noqa: BLE001 - the Channel's next reconcile retries
        logger.warning("cannot remove program %s from the store yet: %s", program.name, error)


async def release_orphans(
    namespace: str, channel: str, channel_programs: kopf.Index[tuple[str, str], str], logger: kopf.Logger
) -> None:
    """Release the Program records stored for ``channel`` whose Program no longer exists.  kopf
    fills its indexes before any handler runs, and a Program is indexed before its own handlers
    publish it, so a record without an indexed Program is one whose Program is gone."""
    existing = set(channel_programs.get((namespace, channel), []))
    try:
        for name, record in (await published_programs(namespace, channel)).items():
            if name not in existing and record is not None:
                logger.info("program %s was deleted while nobody listened: releasing it", name)
                await unpublish_record(record, namespace)
            elif name not in existing:
                logger.warning("program record %s of %s is unreadable: left alone", name, channel)
    except Exception as error:  # noqa: BLE001 - storage trouble must not stop the reconcile
        logger.warning("cannot check the programs of %s in the store: %s", channel, error)


@kopf.on.delete(*GROUP_VERSION, "channels", id="delete-media", field="spec.deletionPolicy", value="Delete")  # type: ignore[arg-type]
async def delete_media(
    name: str,
    namespace: str,
    uid: str,
    channel_programs: kopf.Index[tuple[str, str], str],
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """``deletionPolicy: Delete``: the Channel's media goes before the Channel does, except what the
    Programs that still exist need.  Its encoders and packager go first (foreground: their pods
    with them), so that nothing writes the media again once it is deleted."""
    deployments = [
        item
        for item in await api().list(
            "apps/v1", "Deployment", namespace, label_selector=f"{OWNER_LABEL['Channel']}={name}"
        )
        if owned(item, uid)
    ]
    for item in deployments:
        if not item["metadata"].get("deletionTimestamp"):
            await api().delete(
                "apps/v1",
                "Deployment",
                namespace,
                item["metadata"]["name"],
                uid=item["metadata"].get("uid"),
                propagation="Foreground",
            )
    for item in deployments:
        if await api().get("apps/v1", "Deployment", namespace, item["metadata"]["name"]) is not None:
            raise kopf.TemporaryError(
                f"waiting for Deployment {item['metadata']['name']} and its pods to go before deleting the media",
                delay=5,
            )
    programs = sorted(set(channel_programs.get((namespace, name), [])))
    try:
        deleted = await delete_channel_media(namespace, name, programs)
    except Exception as error:  # noqa: BLE001 - kopf retries; the Channel stays until the media is gone
        raise kopf.TemporaryError(f"cannot delete the media of {name}: {error}", delay=30) from None
    logger.info(
        "deleted %d objects of %s's media; kept what programs %s record", deleted, name, ", ".join(programs) or "(none)"
    )
