"""What a low-latency MPD (``/live/<channel>/ll/manifest.mpd``) says beyond the standard one (pure).

A low-latency channel's encoders store each segment in parts while they write it
(``kubecast.media.parts``).  The LL-DASH MPD lets a player ask for the segment being written
and read it as it grows (DASH-IF IOP low-latency mode, ISO/IEC 23009-1 Annex K):

- segments are addressed by number (``SegmentTemplate@duration``, ``$Number$``): segment n
  covers [n*D, (n+1)*D) of the channel's timeline, so a player knows the next segment's URL
  without a manifest update (a ``SegmentTimeline`` lists only finished segments);
- ``availabilityTimeOffset`` = D - P: segment n may be asked for once its first part could be
  complete, P after its start, and ``availabilityTimeComplete="false"`` says that at that time
  it is not whole yet: the endpoint answers with chunked transfer encoding, one chunk per part
  as the encoder stores it (``kubecast.endpoint.chunked``);
- a ``ServiceDescription`` gives the latency to aim for and the playback rates a player may
  use to hold it, and a ``ProducerReferenceTime`` per adaptation set says which wall-clock time
  the latency is counted from: media time 0 is ``availabilityStartTime`` (the encoders map the
  contribution's clock onto the channel's that way, ``kubecast.encoder.clock``);
- ``UTCTiming`` (the standard MPD's too) lets the player correct its clock against ours.
"""

from __future__ import annotations

from dataclasses import dataclass

# Playback rates a player may use to hold the target latency: DASH-IF's low-latency examples'
# bounds, slow enough that nobody hears the pitch change.
PLAYBACK_RATE_MIN, PLAYBACK_RATE_MAX = 0.96, 1.04
# The target is this many parts behind the wall clock: the newest part is complete one frame
# after its end and listed a few hundred milliseconds later (encoder delay, storage, the
# endpoint's read of parts.json), so a player this far behind has one to two parts buffered.
TARGET_PARTS = 4
REFERENCE_ID = 0
# Relative to /live/<channel>/ll/manifest.mpd: the standard route's init segment (the parts are
# fragments of the same tracks) and the route that sends a segment as it is written
# (kubecast.endpoint.chunked).
INITIALIZATION = "../$RepresentationID$/init.mp4"
MEDIA = "dash/$RepresentationID$/$Number$.m4s"


def _seconds(milliseconds: int) -> str:
    return f"{milliseconds / 1000:.3f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class LowLatencyDash:
    """A low-latency channel's segment duration D and part duration P, in milliseconds."""

    segment_duration_ms: int
    part_duration_ms: int

    def __post_init__(self) -> None:
        if not 0 < self.part_duration_ms < self.segment_duration_ms:
            raise ValueError("a part must be shorter than its segment")

    @property
    def availability_time_offset_ms(self) -> int:
        return self.segment_duration_ms - self.part_duration_ms

    @property
    def target_latency_ms(self) -> int:
        return TARGET_PARTS * self.part_duration_ms

    @property
    def max_latency_ms(self) -> int:
        """Beyond this a player jumps back to the target (dash.js: after a long stall)."""
        return self.target_latency_ms + self.segment_duration_ms

    def service_description(self) -> str:
        return (
            '<ServiceDescription id="0">'
            f'<Latency target="{self.target_latency_ms}" max="{self.max_latency_ms}" referenceId="{REFERENCE_ID}"/>'
            f'<PlaybackRate min="{PLAYBACK_RATE_MIN}" max="{PLAYBACK_RATE_MAX}"/>'
            "</ServiceDescription>"
        )

    def template(self, timescale: int) -> str:
        """Segments by number, each asked for P after its start and delivered as it grows."""
        if (self.segment_duration_ms * timescale) % 1000:
            raise ValueError(f"{self.segment_duration_ms} ms is not a whole number of ticks at {timescale} Hz")
        return (
            f'<SegmentTemplate timescale="{timescale}" duration="{self.segment_duration_ms * timescale // 1000}" '
            f'startNumber="0" availabilityTimeOffset="{_seconds(self.availability_time_offset_ms)}" '
            'availabilityTimeComplete="false" '
            f'initialization="{INITIALIZATION}" media="{MEDIA}"/>'
        )


def producer_reference_time(availability_start: str) -> str:
    """Media time 0 was made at ``availability_start`` (an ISO time): what latency counts from."""
    return (
        f'<ProducerReferenceTime id="{REFERENCE_ID}" type="encoder" wallClockTime="{availability_start}" '
        'presentationTime="0"/>'
    )
