"""Low-latency HLS (RFC 8216bis) playlists and blocking rules, from the timeline and one encoder's
parts (pure: no I/O, no clock).

A low-latency media playlist is the standard one (the timeline's segments) carried on to the
live edge with what the chosen encoder's ``parts.json`` says: segments it has stored whole that
the timeline does not list yet, the parts of the segment it is writing, and a preload hint for the
part after those.  Parts are listed for the segments of the last three target durations
(6.2.2: EXT-X-PART tags are removed after that) and named by the encoder they come from
(``<n>.<k>.<encoder>.m4s``), so a part URL means the same bytes on every replica.

The rules of blocking reload (6.2.5.2) are in ``reload_state``: a request is answered once the
playlist holds what it names; one beyond the last segment by more than two, or beyond the last
part by more than the Advance Part Limit, is refused at once (400); the caller answers 503 after
three target durations (``block_seconds``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction

from kubecast.media.parts import EncoderParts, PartRecord
from kubecast.media.timeline import Timeline, TimelineSegment, TimelineTrack

from .hls import VERSION, program_date_time, target_duration

SKIP_VERSION = 9  # EXT-X-SKIP needs protocol version 9
PARTS_FOR_TARGET_DURATIONS = 3  # 6.2.2: EXT-X-PART tags go once three target durations from the end
SKIP_TARGET_DURATIONS = 6  # 4.4.3.8: the Skip Boundary is at least six target durations


class Reload(Enum):
    READY = "ready"  # the playlist holds what the request names: answer now
    WAIT = "wait"  # not yet: hold the request (at most ``block_seconds``)
    TOO_FAR = "too far"  # beyond what the spec lets a client ask for: 400 at once


@dataclass(frozen=True)
class LowLatencyView:
    """One rendition's playlist at the live edge: complete segments, and the parts the encoder
    ``source`` has stored (by segment number; the open segment's may be an empty list)."""

    track: TimelineTrack
    rows: list[TimelineSegment]
    parts: dict[int, list[PartRecord]] = field(default_factory=dict)
    open_number: int | None = None  # the segment being written (the one after the last row)
    source: str | None = None  # the encoder the parts come from
    part_target_ms: int = 0
    parts_per_segment: int = 1
    target: int = 1  # EXT-X-TARGETDURATION, seconds

    def msn(self, number: int) -> int:
        return number - self.track.numbers_skipped

    def number(self, msn: int) -> int:
        return msn + self.track.numbers_skipped

    @property
    def open_parts(self) -> list[PartRecord]:
        return self.parts.get(self.open_number, []) if self.open_number is not None else []

    @property
    def hint(self) -> tuple[int, int] | None:
        """(segment number, part index) of the next part: what EXT-X-PRELOAD-HINT names."""
        if self.source is None or self.open_number is None:
            return None
        if not self.open_parts:
            return self.open_number, 0
        following = self.open_parts[-1].part + 1
        if following >= self.parts_per_segment:
            return self.open_number + 1, 0
        return self.open_number, following

    @property
    def last_part(self) -> tuple[int, int] | None:
        """(segment number, part index) of the newest part listed."""
        if self.open_parts:
            return self.open_number or 0, self.open_parts[-1].part
        for row in reversed(self.rows):
            if row.number in self.parts:
                return row.number, self.parts[row.number][-1].part
        return None


def _whole_parts(records: list[PartRecord]) -> dict[int, list[PartRecord]]:
    """Parts by segment, each segment's from part 0 on without a gap (a part the writer dropped
    ends what can be listed of its segment)."""
    by_number: dict[int, list[PartRecord]] = {}
    for record in records:
        listed = by_number.setdefault(record.number, [])
        if record.part == len(listed):
            listed.append(record)
    return {number: listed for number, listed in by_number.items() if listed}


def build_view(
    timeline: Timeline, track: TimelineTrack, edge: EncoderParts | None, source: str | None
) -> LowLatencyView:
    rows = list(track.segments)
    target = target_duration(timeline, rows, track.info.timescale)
    if edge is None or source is None:
        return LowLatencyView(track, rows, target=target)
    pps = math.ceil(timeline.segment_duration_ms / edge.part_duration_ms)
    track_parts = edge.tracks.get(track.info.id)
    parts = _whole_parts(track_parts.parts) if track_parts is not None else {}
    complete = track_parts.complete if track_parts is not None else None
    # Segments the encoder has stored whole but the timeline does not list yet (the packager is a
    # read and a write behind): listed from the encoder's parts, consecutive to the timeline's.
    following = rows[-1].number + 1 if rows else min(parts, default=None)
    while following is not None and complete is not None and following <= complete and following in parts:
        listed = parts[following]
        rows.append(
            TimelineSegment(
                number=following,
                start=listed[0].start,
                duration=sum(p.duration for p in listed),
                size=sum(p.size for p in listed),
                source=source,
                discontinuity=listed[0].discontinuity,
            )
        )
        following += 1
    # Parts are listed for the last three target durations of segments (and the open one), and
    # only where they add up to the segment listed (the same frames, whichever encoder's copy).
    recent = math.ceil(PARTS_FOR_TARGET_DURATIONS * target * 1000 / timeline.segment_duration_ms)
    shown: dict[int, list[PartRecord]] = {}
    for row in rows[-recent:]:
        listed = parts.get(row.number, [])
        if listed and listed[0].start == row.start and sum(p.duration for p in listed) == row.duration:
            shown[row.number] = listed
    open_number = following
    if open_number is not None and open_number in parts:
        shown[open_number] = parts[open_number]
    return LowLatencyView(
        track,
        rows,
        shown,
        open_number=open_number,
        source=source,
        part_target_ms=edge.part_target_ms,
        parts_per_segment=pps,
        target=target,
    )


def advance_part_limit(part_target_ms: int) -> Fraction:
    """6.2.5.2: three divided by the Part Target Duration if it is under a second, else three."""
    return Fraction(3000, part_target_ms) if part_target_ms < 1000 else Fraction(3)


def block_seconds(view: LowLatencyView) -> float:
    """6.2.5.2: a server that cannot answer after three target durations says 503."""
    return 3.0 * view.target


def reload_state(view: LowLatencyView, msn: int, part: int | None) -> Reload:
    """Whether a blocking reload for ``_HLS_msn=msn`` (and ``_HLS_part=part``) can be answered."""
    number = view.number(msn)
    last = view.rows[-1].number if view.rows else None
    if last is not None and number > last + 2:
        return Reload.TOO_FAR  # "greater than the last Media Segment's MSN plus two"
    if part is None:
        return Reload.READY if last is not None and number <= last else Reload.WAIT
    if last is not None and number <= last:
        listed = view.parts.get(number)
        if not listed or part <= listed[-1].part:
            return Reload.READY  # a complete segment holds all its parts
        number, part = number + 1, 0  # past a segment's final part: part 0 of the next one
        if number <= last:
            return Reload.READY
    newest = view.last_part
    if newest is not None and (number, part) <= newest:
        return Reload.READY
    if view.part_target_ms:
        pps = view.parts_per_segment
        if newest is None:
            newest = (last, pps - 1) if last is not None else None
        if newest is not None:
            ahead = (number * pps + part) - (newest[0] * pps + newest[1])
            if ahead > advance_part_limit(view.part_target_ms):
                return Reload.TOO_FAR
    return Reload.WAIT


def part_uri(number: int, part: int, source: str) -> str:
    return f"{number}.{part}.{source}.m4s"


@dataclass(frozen=True)
class RenditionReport:
    uri: str  # relative to the playlist reporting it
    last_msn: int
    last_part: int | None


def rendition_report(view: LowLatencyView, uri: str) -> RenditionReport | None:
    newest = view.last_part
    if newest is not None:
        return RenditionReport(uri, view.msn(newest[0]), newest[1])
    if view.rows:
        return RenditionReport(uri, view.msn(view.rows[-1].number), None)
    return None


def _seconds(ticks: int, timescale: int) -> str:
    return f"{ticks / timescale:.5f}"


def media_playlist(
    timeline: Timeline, view: LowLatencyView, *, skip: bool = False, reports: list[RenditionReport] | None = None
) -> str:
    """The low-latency media playlist; ``skip``: the Playlist Delta Update (``_HLS_skip=YES``)."""
    track, rows, timescale = view.track, view.rows, view.track.info.timescale
    stopped = timeline.state == "stopped"
    skip_until = SKIP_TARGET_DURATIONS * view.target
    skipped = 0
    if skip and not stopped and rows:
        end = rows[-1].start + rows[-1].duration
        skipped = sum(1 for row in rows if end - (row.start + row.duration) > skip_until * timescale)
    server_control = [f"CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={skip_until:.1f}"]
    if view.part_target_ms:
        server_control.append(f"PART-HOLD-BACK={3 * view.part_target_ms / 1000:.3f}")
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{SKIP_VERSION if skipped else VERSION}",
        f"#EXT-X-TARGETDURATION:{view.target}",
        "#EXT-X-SERVER-CONTROL:" + ",".join(server_control),
    ]
    if view.part_target_ms:
        lines.append(f"#EXT-X-PART-INF:PART-TARGET={view.part_target_ms / 1000:.3f}")
    lines.append(f"#EXT-X-MEDIA-SEQUENCE:{view.msn(rows[0].number) if rows else track.media_sequence()}")
    if discontinuity_sequence := track.discontinuity_sequence():
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    lines += ["#EXT-X-INDEPENDENT-SEGMENTS", '#EXT-X-MAP:URI="init.mp4"']
    if skipped:
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    for index, row in enumerate(rows):
        if index < skipped:
            continue
        if row.discontinuity and index > 0:
            lines.append("#EXT-X-DISCONTINUITY")
        if index == skipped or row.discontinuity:
            if stamp := program_date_time(timeline, row.start, timescale):
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp}")
        if not stopped:
            lines += _part_lines(view, row.number)
        lines += [f"#EXTINF:{row.duration / timescale:.3f},", f"{row.number}.m4s"]
    if stopped:
        lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"
    if view.open_number is not None:
        lines += _part_lines(view, view.open_number)
    if (hint := view.hint) is not None and view.source is not None:
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{part_uri(*hint, view.source)}"')
    for report in reports or []:
        last_part = f",LAST-PART={report.last_part}" if report.last_part is not None else ""
        lines.append(f'#EXT-X-RENDITION-REPORT:URI="{report.uri}",LAST-MSN={report.last_msn}{last_part}')
    return "\n".join(lines) + "\n"


def _part_lines(view: LowLatencyView, number: int) -> list[str]:
    assert view.source is not None or number not in view.parts  # parts come with their encoder
    timescale = view.track.info.timescale
    return [
        f"#EXT-X-PART:DURATION={_seconds(p.duration, timescale)},URI=\"{part_uri(number, p.part, view.source or '')}\""
        + (",INDEPENDENT=YES" if p.independent else "")
        for p in view.parts.get(number, [])
    ]
