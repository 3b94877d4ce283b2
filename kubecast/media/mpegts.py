"""MPEG-TS (ISO/IEC 13818-1) demuxing for contribution: H.264 and AAC of the first program.

The first H.264 PID and every AAC PID (up to ``MAX_AUDIO_TRACKS``) are taken: the audio PIDs are
numbered as tracks in the order the PMT lists them, each with the language its
ISO_639_language_descriptor names (``audio_tracks``), so a contribution with one audio per
language keeps them all.  The first PID of ID3 timed metadata (stream type 0x15 with a
metadata_descriptor of format ``ID3 ``, as Apple specifies it for HLS and ffmpeg writes it) gives
frames of kind ``"id3"``: the tags, at their PTS.

Incremental and pure: ``TsDemuxer.feed`` takes bytes in whatever pieces the network delivers
(UDP datagrams of 7 packets, an SRT stream, RTP payloads) and returns the complete PES
frames.  Damage is counted, never raised: a lost sync byte resynchronises on the next two
packets that start with 0x47, and a continuity-counter gap drops the PES frame in progress on
that PID (a frame with a hole would decode as garbage) — the contribution goes on with the
next one.  The PES packets themselves (their headers, timestamps and the 33-bit wrap) are
``kubecast.media.tspes``.

The program clock reference is what a TS receiver keeps time by, and PTS/DTS are read on its
time base.  An encoder that changes that time base (a splice, a restarted clock) says so with
the ``discontinuity_indicator`` on the PCR PID; every frame says which time base it started on
(``timebase``, the count of such changes before it) and is unwrapped on that base, so the
contribution can be rebased to carry on where it was instead of jumping by whatever the new
clock reads.

Cost: a contribution is ~4,000 packets a second at 6 Mbit/s, so nothing may be done per packet
that can be done per buffer.  The sync bytes of a whole buffer are checked in one slice, and a
PES arrives as runs of payload-only packets on one PID with consecutive counters, which
``_run`` finds with slices of the header bytes and whose payloads are joined at once; only the
packet that starts a run or breaks one is parsed by itself (``_packet``).  Fed ten datagrams
at a time (as the front ends do), it costs a fifth of what parsing packet by packet did.

Why not libavformat's demuxer through PyAV with a custom IO object: it reads by blocking on its
IO callback, so on a live socket it needs a thread of its own and probes (buffers) the stream
before the first frame; it repairs or hides the damage this module counts per kind (sync
losses, continuity gaps, dropped and malformed PES, signalled time base changes, which the
ingest reports in ``kubecast_ingest_transport_errors_total`` and acts on); and the hostile-input
tests and the fuzz corpus pin this module's behaviour.  ``_pmt`` walks every elementary stream
with its type and descriptors, so that further PIDs (a second audio with its language,
captions) can be selected where ``streams`` is built and take the same paths.

SCTE-35 (stream type 0x86) is carried in sections, not PES: its PID is assembled section by
section (a section may span packets, and a packet may end one and start another) and each
whole section is handed out as it completes (``take_sections``), raw, with the time base it
arrived on; ``kubecast.media.scte35`` judges it.  They are rare (a few per break), so they take
the per-packet path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .tspes import MAX_PES, PendingPes, PesFrame, Unwrap, parse_pes
from .tssections import SectionAssembler, TsSection

PACKET_SIZE = 188
SYNC_BYTE = 0x47
STREAM_TYPE_H264 = 0x1B
STREAM_TYPE_AAC_ADTS = 0x0F
STREAM_TYPE_SCTE35 = 0x86
STREAM_TYPE_METADATA = 0x15  # metadata in PES (ISO 13818-1 2.12.9); ID3 when its descriptor says so
ISO_639_LANGUAGE_DESCRIPTOR = 0x0A
METADATA_DESCRIPTOR = 0x26
ID3_FORMAT = b"ID3 "
MAX_AUDIO_TRACKS = 8  # more AAC PIDs than this in one program is not a contribution
_NOT_SYNC = re.compile(rb"[^\x47]")
_LONGEST_RUN = 4096  # packets taken in one go (a longer run is taken in several)
_COUNTERS = bytes(0x10 | (n & 0x0F) for n in range(16 + _LONGEST_RUN))  # payload-only headers' fourth bytes


@dataclass(frozen=True)
class AudioTrack:
    """An AAC PID of the program, as its PMT describes it."""

    track: int  # 0 for the first AAC PID the PMT lists, 1 for the next, ...
    language: bytes | None  # the ISO_639_language_code of its descriptor, as sent (the ingest judges it)


@dataclass
class TsStats:
    packets: int = 0
    sync_losses: int = 0
    continuity_errors: int = 0
    dropped_frames: int = 0  # PES frames lost to damage
    malformed_pes: int = 0
    timebase_changes: int = 0  # discontinuity_indicator on the PCR PID


def _run(firsts: bytes, seconds: bytes, thirds: bytes, index: int, counter: int) -> int:
    """How many packets from ``index`` continue one another: the same second and third header
    bytes (PID, no payload start, no error) and payload only with counters one up each time."""
    first, second = firsts[index : index + 1], seconds[index : index + 1]
    rest = min(len(firsts) - index, _LONGEST_RUN)
    same = min(
        rest - len(firsts[index : index + rest].lstrip(first)),
        rest - len(seconds[index : index + rest].lstrip(second)),
    )
    if thirds[index : index + same] == _COUNTERS[counter : counter + same]:
        return same
    low, high = 1, same - 1  # the longest prefix whose counters follow on
    while low < high:
        middle = (low + high + 1) // 2
        if thirds[index : index + middle] == _COUNTERS[counter : counter + middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _language(descriptors: bytes) -> bytes | None:
    """The first ISO_639_language_code among an elementary stream's descriptors."""
    index = 0
    while index + 2 <= len(descriptors):
        tag, length = descriptors[index], descriptors[index + 1]
        if tag == ISO_639_LANGUAGE_DESCRIPTOR and length >= 4 and index + 5 <= len(descriptors):
            return bytes(descriptors[index + 2 : index + 5])
        index += 2 + length
    return None


def _is_id3(descriptors: bytes) -> bool:
    """Whether a metadata stream's descriptors include a metadata_descriptor of ID3 (Apple's timed
    metadata for HLS, as ffmpeg writes it: application format 0xFFFF and format 0xFF, each
    followed by the format identifier ``ID3 ``)."""
    index = 0
    while index + 2 <= len(descriptors):
        tag, length = descriptors[index], descriptors[index + 1]
        body = descriptors[index + 2 : index + 2 + length]
        if tag == METADATA_DESCRIPTOR and len(body) >= 5:
            at = 6 if body[:2] == b"\xff\xff" else 2  # past the application format (and its identifier)
            if body[at : at + 1] == b"\xff" and body[at + 1 : at + 5] == ID3_FORMAT:
                return True
        index += 2 + length
    return False


class TsDemuxer:
    def __init__(self) -> None:
        self.stats = TsStats()
        self._pending = bytearray()
        self._pmt_pid: int | None = None
        self._pcr_pid: int | None = None
        self.streams: dict[int, str] = {}  # PID -> "video" | "audio" | "id3"
        self.audio_tracks: dict[int, AudioTrack] = {}  # audio PID -> its track and language
        self._continuity: dict[int, int] = {}
        self._pes: dict[int, PendingPes] = {}
        self._unwrap = Unwrap()
        self.sections = SectionAssembler()  # SCTE-35 PIDs

    def unwrap_time(self, pts: int) -> int:
        """A 33-bit time on the current time base, unwrapped as the frames arriving now are."""
        return self._unwrap.peek(pts)

    def take_sections(self) -> list[TsSection]:
        """The SCTE-35 sections completed since the last call, in arrival order."""
        return self.sections.take()

    def feed(self, data: bytes) -> list[PesFrame]:
        if self._pending:
            self._pending += data
            buffer = bytes(self._pending)
        else:
            buffer = bytes(data)
        frames: list[PesFrame] = []
        position, end = 0, len(buffer)
        while end - position >= PACKET_SIZE:
            count = (end - position) // PACKET_SIZE
            # The sync bytes of every whole packet in one slice; the first that is not 0x47 ends the
            # aligned run.  A packet counts as in sync when the one after it (if whole) is too.
            syncs = buffer[position : position + count * PACKET_SIZE : PACKET_SIZE]
            broken = _NOT_SYNC.search(syncs) if syncs.count(SYNC_BYTE) != count else None
            good = count if broken is None else max(broken.start() - 1, 0)
            if good:
                self._packets(buffer, position, good, frames)
                position += good * PACKET_SIZE
            if broken is not None:
                self.stats.sync_losses += 1
                position = self._resync(buffer, position + 1)
        self._pending = bytearray(buffer[position:])
        return frames

    def flush(self) -> list[PesFrame]:
        """The frames still being assembled (at the end of a contribution)."""
        frames: list[PesFrame] = []
        for pid in list(self._pes):
            self._finish(pid, frames)
        return frames

    @staticmethod
    def _resync(data: bytes, start: int) -> int:
        """The next offset holding a sync byte that the packet after it confirms (or the tail)."""
        position = data.find(SYNC_BYTE, start)
        while position != -1 and position + PACKET_SIZE < len(data) and data[position + PACKET_SIZE] != SYNC_BYTE:
            position = data.find(SYNC_BYTE, position + 1)
        return len(data) if position == -1 else position

    def _packets(self, buffer: bytes, start: int, count: int, frames: list[PesFrame]) -> None:
        """``count`` packets in sync from ``start``.

        Most packets of a contribution continue the PES of the video or audio PID with nothing
        but payload, one after the other with consecutive counters.  Such a run is found with
        slices of the header bytes of all packets (``_run``) and its payloads joined at once;
        every other packet goes through ``_packet``."""
        self.stats.packets += count
        stop = start + count * PACKET_SIZE
        firsts = buffer[start + 1 : stop : PACKET_SIZE]
        seconds = buffer[start + 2 : stop : PACKET_SIZE]
        thirds = buffer[start + 3 : stop : PACKET_SIZE]
        continuity, assembling, sections = self._continuity, self._pes, self.sections
        index = 0
        while index < count:
            first, third = firsts[index], thirds[index]
            offset = start + index * PACKET_SIZE
            # Payload only, no payload_unit_start, no transport_error: the middle of a PES (or of a
            # PSI section, which only matters from its start; SCTE-35 sections go packet by packet).
            pid = (first & 0x1F) << 8 | seconds[index]
            if third & 0x30 != 0x10 or first & 0xC0 or pid in sections.pids:
                self._packet(buffer, offset, frames)
                index += 1
                continue
            pes = assembling.get(pid)
            counter = third & 0x0F
            if pid != 0x1FFF:  # null packets have no meaningful counter
                last = continuity.get(pid)
                if counter == last:  # a duplicate packet (ISO 13818-1 2.4.3.3): its payload is already taken
                    index += 1
                    continue
                continuity[pid] = counter
                if last is not None and counter != (last + 1) & 0x0F:
                    self.stats.continuity_errors += 1
                    if pes is not None:
                        pes.damaged = True
            if pes is None or pid == 0 or pid == self._pmt_pid or pid not in self.streams:
                index += 1
                continue  # joined mid-frame (wait for the next start), or not a PES this program carries
            run = 1 if pid == 0x1FFF else _run(firsts, seconds, thirds, index, counter)
            if run == 1:
                pes.buffer += buffer[offset + 4 : offset + PACKET_SIZE]
            else:
                end = offset + run * PACKET_SIZE
                pes.buffer += b"".join([buffer[at : at + 184] for at in range(offset + 4, end, PACKET_SIZE)])
                continuity[pid] = (counter + run - 1) & 0x0F
            index += run
            if len(pes.buffer) > MAX_PES:
                pes.damaged = True
                pes.buffer.clear()

    def _packet(self, buffer: bytes, offset: int, frames: list[PesFrame]) -> None:
        """Any packet in sync, at ``offset`` of ``buffer``."""
        if buffer[offset + 1] & 0x80:  # transport_error_indicator: the modem said so
            self.stats.continuity_errors += 1
            return
        start = bool(buffer[offset + 1] & 0x40)
        pid = (buffer[offset + 1] & 0x1F) << 8 | buffer[offset + 2]
        control = (buffer[offset + 3] >> 4) & 0x03
        counter = buffer[offset + 3] & 0x0F
        payload_start, random_access = 4, False
        if control & 0x02:  # adaptation field
            length = buffer[offset + 4]
            if length > 183:
                self.stats.continuity_errors += 1
                return
            flags = buffer[offset + 5] if length else 0
            if flags & 0x40:
                random_access = True
            if flags & 0x80:  # discontinuity_indicator: counters restart legitimately
                self._continuity.pop(pid, None)
                if pid == self._pcr_pid and flags & 0x10:  # ... and with a PCR, the time base too
                    self.stats.timebase_changes += 1
                    self._unwrap = Unwrap()
            payload_start = 5 + length
        if not control & 0x01:
            return  # no payload: the counter does not advance
        if pid != 0x1FFF and self._duplicate(pid, counter):
            return
        payload = buffer[offset + payload_start : offset + PACKET_SIZE]
        if pid == 0:
            if start:
                self._pat(payload)
        elif pid == self._pmt_pid:
            if start:
                self._pmt(payload)
        elif pid in self.streams:
            self._pes_payload(pid, start, random_access, payload, frames)
        elif pid in self.sections.pids:
            self.sections.payload(pid, start, payload, self.stats.timebase_changes)

    def _duplicate(self, pid: int, counter: int) -> bool:
        """Whether the packet repeats the last one of ``pid`` (ISO 13818-1 2.4.3.3 lets an encoder
        send a packet twice; the copy is dropped, its payload already taken); a gap in the counters
        is counted and damages the frame in progress."""
        last = self._continuity.get(pid)
        if counter == last:
            return True
        self._continuity[pid] = counter
        if last is not None and counter != (last + 1) & 0x0F:
            self.stats.continuity_errors += 1
            if pid in self._pes:
                self._pes[pid].damaged = True
            self.sections.drop(pid)
        return False

    @staticmethod
    def _section(payload: bytes) -> bytes | None:
        pointer = payload[0] if payload else 0
        section = payload[1 + pointer :]
        if len(section) < 3:
            return None
        length = (section[1] & 0x0F) << 8 | section[2]
        if len(section) < 3 + length or length < 9:
            return None
        return section[: 3 + length - 4]  # without the CRC

    def _pat(self, payload: bytes) -> None:
        section = self._section(payload)
        if section is None or section[0] != 0x00:
            return
        for index in range(8, len(section) - 3, 4):
            program = section[index] << 8 | section[index + 1]
            if program != 0:  # 0 is the network PID
                self._pmt_pid = (section[index + 2] & 0x1F) << 8 | section[index + 3]
                return

    def _pmt(self, payload: bytes) -> None:
        section = self._section(payload)
        if section is None or section[0] != 0x02 or len(section) < 12:
            return  # too short for the PCR PID and program info length: a damaged PMT
        self._pcr_pid = (section[8] & 0x1F) << 8 | section[9]
        info_length = (section[10] & 0x0F) << 8 | section[11]
        index = 12 + info_length
        streams: dict[int, str] = {}
        audio: dict[int, AudioTrack] = {}
        section_pids: set[int] = set()
        while index + 5 <= len(section):
            stream_type = section[index]
            pid = (section[index + 1] & 0x1F) << 8 | section[index + 2]
            es_length = (section[index + 3] & 0x0F) << 8 | section[index + 4]
            if pid in streams or pid in section_pids:
                pass  # a PID listed twice: its first entry stands
            elif stream_type == STREAM_TYPE_H264 and "video" not in streams.values():
                streams[pid] = "video"
            elif stream_type == STREAM_TYPE_AAC_ADTS and len(audio) < MAX_AUDIO_TRACKS:
                streams[pid] = "audio"
                audio[pid] = AudioTrack(len(audio), _language(section[index + 5 : index + 5 + es_length]))
            elif stream_type == STREAM_TYPE_SCTE35:
                section_pids.add(pid)
            elif (
                stream_type == STREAM_TYPE_METADATA
                and "id3" not in streams.values()
                and _is_id3(section[index + 5 : index + 5 + es_length])
            ):
                streams[pid] = "id3"
            index += 5 + es_length
        self.streams = streams
        self.audio_tracks = audio
        self.sections.pids = section_pids

    def _pes_payload(self, pid: int, start: bool, random_access: bool, payload: bytes, frames: list[PesFrame]) -> None:
        if start:
            self._finish(pid, frames)
            self._pes[pid] = PendingPes(
                self.streams[pid],
                bytearray(payload),
                random_access,
                unwrap=self._unwrap,
                timebase=self.stats.timebase_changes,
            )
            return
        pes = self._pes.get(pid)
        if pes is None:
            return  # joined mid-frame: wait for the next start
        pes.buffer += payload
        if len(pes.buffer) > MAX_PES:
            pes.damaged = True
            pes.buffer.clear()

    def _finish(self, pid: int, frames: list[PesFrame]) -> None:
        pes = self._pes.pop(pid, None)
        if pes is None:
            return
        unwrap = pes.unwrap or self._unwrap
        frame = None if pes.damaged else parse_pes(pes.kind, pid, bytes(pes.buffer), pes.random_access, unwrap)
        if frame is None:
            self.stats.malformed_pes += not pes.damaged
            self.stats.dropped_frames += 1
            return
        frame.timebase = pes.timebase
        if pes.kind == "audio":
            known = self.audio_tracks.get(pid)
            frame.track = known.track if known is not None else 0
        frames.append(frame)
