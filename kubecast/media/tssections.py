"""Private sections of MPEG-TS PIDs (ISO/IEC 13818-1 2.4.4), assembled for the demuxer (pure).

SCTE-35 markers travel as sections on their own PID, not as PES: a section may span several
packets and a packet may end one section and begin the next, its ``pointer_field`` saying
where.  ``SectionAssembler`` takes the payloads of those PIDs and hands out each whole section
as it completes, raw (its CRC is for the section's parser to check), with the time base it
arrived on.  A gap in a PID's continuity counters drops the section in progress (``drop``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_SECTION = 3 + 0xFFF  # a 12-bit section_length and the three bytes before it
PAYLOAD = 184


@dataclass(frozen=True)
class TsSection:
    """One whole section of a SCTE-35 PID (CRC not yet checked)."""

    pid: int
    data: bytes
    timebase: int  # signalled PCR discontinuities before it arrived


@dataclass
class SectionAssembler:
    pids: set[int] = field(default_factory=set)  # the section PIDs the PMT lists
    _assembling: dict[int, bytearray] = field(default_factory=dict)
    _complete: list[TsSection] = field(default_factory=list)

    def take(self) -> list[TsSection]:
        """The sections completed since the last call, in arrival order."""
        sections, self._complete = self._complete, []
        return sections

    def drop(self, pid: int) -> None:
        self._assembling.pop(pid, None)

    def payload(self, pid: int, start: bool, payload: bytes, timebase: int) -> None:
        assembling = self._assembling.get(pid)
        if start:
            pointer = payload[0] if payload else 0
            if assembling is not None:
                assembling += payload[1 : 1 + pointer]  # the end of the section in progress
                self._out(pid, assembling, timebase)
            self._assembling[pid] = assembling = bytearray(payload[1 + pointer :])
        elif assembling is None:
            return  # joined mid-section: wait for the next start
        else:
            assembling += payload
        self._out(pid, assembling, timebase)
        if len(assembling) > MAX_SECTION + PAYLOAD:
            assembling.clear()  # nothing a section could be: damage

    def _out(self, pid: int, buffer: bytearray, timebase: int) -> None:
        while len(buffer) >= 3:
            if buffer[0] == 0xFF:
                buffer.clear()  # stuffing to the end of the packet
                return
            length = 3 + ((buffer[1] & 0x0F) << 8 | buffer[2])
            if len(buffer) < length:
                return
            self._complete.append(TsSection(pid, bytes(buffer[:length]), timebase))
            del buffer[:length]
