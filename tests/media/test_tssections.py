"""SCTE-35 sections out of TS packets: across packets, several in one, after a lost packet."""

from __future__ import annotations

from ts_packets import PMT_PID, packet, pat, pmt

from kubecast.media.mpegts import STREAM_TYPE_SCTE35, TsDemuxer
from kubecast.media.scte35 import splice_insert_section

SCTE35_PID = 0x1F0


def sections(count: int) -> list[bytes]:
    return [splice_insert_section(event_id=n, out=n % 2 == 0, pts=n * 90_000, duration=None) for n in range(count)]


def demuxer() -> TsDemuxer:
    ts = TsDemuxer()
    ts.feed(pat() + pmt([(STREAM_TYPE_SCTE35, SCTE35_PID)], counter=0))
    assert ts.sections.pids == {SCTE35_PID} and PMT_PID not in ts.sections.pids
    return ts


def test_a_section_across_packets_and_several_in_one_packet():
    six = sections(6)  # 35 bytes each: the first packet ends inside the sixth
    run = b"".join(six)
    ts = demuxer()
    ts.feed(packet(SCTE35_PID, b"\x00" + run[:183], start=True, counter=0))
    assert [s.data for s in ts.take_sections()] == six[:5]
    ts.feed(packet(SCTE35_PID, run[183:], start=False, counter=1))  # then stuffing (0xff) to the end
    assert [s.data for s in ts.take_sections()] == six[5:]


def test_the_pointer_field_ends_the_previous_section_and_starts_the_next():
    *six, seventh = sections(7)
    run = b"".join(six)
    ts = demuxer()
    ts.feed(packet(SCTE35_PID, b"\x00" + run[:183], start=True, counter=0))
    rest = run[183:]
    ts.feed(packet(SCTE35_PID, bytes([len(rest)]) + rest + seventh, start=True, counter=1))
    assert [s.data for s in ts.take_sections()] == [*six, seventh]


def test_a_lost_packet_drops_the_section_it_cut_and_the_next_one_arrives():
    *six, seventh = sections(7)
    run = b"".join(six)
    ts = demuxer()
    ts.feed(packet(SCTE35_PID, b"\x00" + run[:183], start=True, counter=0))
    ts.feed(packet(SCTE35_PID, run[183:], start=False, counter=2))  # counter 1 never came
    ts.feed(packet(SCTE35_PID, b"\x00" + seventh, start=True, counter=3))
    assert [s.data for s in ts.take_sections()] == [*six[:5], seventh]
    assert ts.stats.continuity_errors == 1
