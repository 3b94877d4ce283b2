"""Where everything lives in the store.  Every key kubecast reads or writes is built here.

::

    channels/<channel>/timeline.json                         index; the packager replaces it whole
    channels/<channel>/control.json                          the channel's asked-for state; the control
                                                             plane replaces it
    channels/<channel>/encoders/<instance>/progress.json     encoder heartbeat + recent segments;
                                                             its encoder replaces it
    channels/<channel>/encoders/<instance>/thumbnail.jpg     latest preview picture; its encoder replaces it
    channels/<channel>/encoders/<instance>/<rendition>/init-<sha256[:16]>.mp4   CMAF header, immutable
    channels/<channel>/encoders/<instance>/<rendition>/<n>.m4s                  CMAF segment n, immutable
    channels/<channel>/encoders/<instance>/<rendition>/<n>.<k>.m4s              part k of segment n (low
                                                                                latency), immutable
    channels/<channel>/encoders/<instance>/parts.json       the parts of the last segments (low latency);
                                                             its encoder replaces it
    channels/<channel>/programs/<program>/program.json      a Program's spec; the control plane replaces it
    channels/<channel>/programs/<program>/timeline.json     the program's recorded window;
                                                            the packager replaces it
    locators/<locator>.json                                  the program a locator (URL path) names;
                                                             the control plane writes it

``<instance>`` is ``A`` or ``B`` (the redundant pair, ``ENCODER_INSTANCES``).  A segment is listed in its encoder's
``progress.json`` only after the segment itself is stored, and in ``timeline.json`` only
after that: a manifest never names an object that is not complete.  Names are DNS-1123
labels (channels) or ``[A-Za-z0-9_-]`` ids (renditions, instances), so no key built here
contains ``..`` or a separator of its own; ``Store`` checks every key again.
"""

from __future__ import annotations

import hashlib

ENCODER_INSTANCES = ("A", "B")  # the redundant pair of every channel


def channel_prefix(channel: str) -> str:
    return f"channels/{channel}"


def timeline_key(channel: str) -> str:
    return f"{channel_prefix(channel)}/timeline.json"


def control_key(channel: str) -> str:
    return f"{channel_prefix(channel)}/control.json"


def encoder_prefix(channel: str, instance: str) -> str:
    return f"{channel_prefix(channel)}/encoders/{instance}"


def progress_key(channel: str, instance: str) -> str:
    return f"{encoder_prefix(channel, instance)}/progress.json"


def thumbnail_key(channel: str, instance: str) -> str:
    return f"{encoder_prefix(channel, instance)}/thumbnail.jpg"


def init_name(init_segment: bytes) -> str:
    """Content-addressed, so that a changed codec configuration can never overwrite a header in use
    and two encoders with identical headers are seen to be interchangeable."""
    return f"init-{hashlib.sha256(init_segment).hexdigest()[:16]}.mp4"


def init_key(channel: str, instance: str, rendition: str, name: str) -> str:
    return f"{encoder_prefix(channel, instance)}/{rendition}/{name}"


def segment_key(channel: str, instance: str, rendition: str, number: int) -> str:
    return f"{encoder_prefix(channel, instance)}/{rendition}/{number}.m4s"


def part_key(channel: str, instance: str, rendition: str, number: int, index: int) -> str:
    return f"{encoder_prefix(channel, instance)}/{rendition}/{number}.{index}.m4s"


def parts_key(channel: str, instance: str) -> str:
    """The encoder's live edge (``kubecast.media.parts.EncoderParts``), written at every part."""
    return f"{encoder_prefix(channel, instance)}/parts.json"


def clock_prefix(channel: str) -> str:
    return f"{channel_prefix(channel)}/clock"


def clock_key(channel: str) -> str:
    """The channel's availabilityStartTime, written once by whichever encoder starts first."""
    return f"{clock_prefix(channel)}/start.json"


def epoch_key(channel: str, epoch: int) -> str:
    """Epoch k maps the timestamps of one contribution onto the channel timeline (immutable)."""
    return f"{clock_prefix(channel)}/epoch-{epoch:08d}.json"


def programs_prefix(channel: str) -> str:
    return f"{channel_prefix(channel)}/programs"


def program_key(channel: str, program: str) -> str:
    return f"{programs_prefix(channel)}/{program}/program.json"


def program_timeline_key(channel: str, program: str) -> str:
    return f"{programs_prefix(channel)}/{program}/timeline.json"


def locators_prefix() -> str:
    return "locators"


def locator_key(locator: str) -> str:
    return f"{locators_prefix()}/{locator}.json"
