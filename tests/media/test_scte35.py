"""The SCTE-35 parser against sections nobody here wrote (the standard's own examples, and
``threefive``'s encoder), and against every kind of damage a contribution can carry."""

from __future__ import annotations

import base64
import struct

import pytest
import threefive

from kubecast.media.scte35 import (
    SPLICE_INSERT,
    TIME_SIGNAL,
    Scte35Error,
    Splice,
    crc32_mpeg2,
    parse_splice_info,
    splice_insert_section,
)

# ANSI/SCTE 35 2023, section 14 (sample SCTE-35 messages): 14.1 a time_signal with a Provider
# Placement Opportunity Start, 14.2 a splice_insert out of network with a break duration.
TIME_SIGNAL_EXAMPLE = base64.b64decode("/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg==")
SPLICE_INSERT_EXAMPLE = base64.b64decode("/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=")


def threefive_splice_insert(*, event_id: int, out: bool, pts: float, duration: float | None) -> bytes:
    command = threefive.SpliceInsert()
    command.splice_event_id = event_id
    command.splice_event_cancel_indicator = False
    command.out_of_network_indicator = out
    command.program_splice_flag = True
    command.splice_immediate_flag = False
    command.time_specified_flag = True
    command.pts_time = pts
    command.duration_flag = duration is not None
    command.break_auto_return = True
    command.break_duration = duration
    command.event_id_compliance_flag = True
    command.unique_program_id = 1
    command.avail_num = 0
    command.avails_expected = 0
    cue = threefive.Cue()
    cue.command = command
    cue.encode()
    return bytes(cue.bites)


def test_the_standards_examples():
    placement = parse_splice_info(TIME_SIGNAL_EXAMPLE)
    assert placement.command_type == TIME_SIGNAL
    assert placement.splice == Splice(event_id=0x4800008E, out=True, pts=0x072BD0050, duration=0x0001A599B0)
    insert = parse_splice_info(SPLICE_INSERT_EXAMPLE)
    assert insert.command_type == SPLICE_INSERT
    assert insert.splice == Splice(event_id=0x4800008F, out=True, pts=0x07369C02E, duration=0x00052CCF5)


@pytest.mark.parametrize("out", [True, False])
def test_threefive_sections(out: bool):
    section = threefive_splice_insert(event_id=4242, out=out, pts=1000.5, duration=30.0 if out else None)
    info = parse_splice_info(section)
    assert info.splice == Splice(4242, out, 90_045_000, 2_700_000 if out else None)


def test_our_sections_read_back_the_same_in_threefive():
    section = splice_insert_section(event_id=99, out=True, pts=123_456, duration=30 * 90_000)
    cue = threefive.Cue(section)
    cue.decode()
    assert cue.command.out_of_network_indicator is True
    assert cue.command.splice_event_id == 99
    assert round(cue.command.pts_time * 90_000) == 123_456
    assert cue.command.break_duration == 30.0
    assert parse_splice_info(section).splice == Splice(99, True, 123_456, 30 * 90_000)


def test_pts_adjustment_applies_modulo_33_bits():
    section = bytearray(splice_insert_section(event_id=1, out=True, pts=(1 << 33) - 10, duration=None))
    section[4] = 0x00
    section[5:9] = struct.pack(">I", 100)  # pts_adjustment = 100
    section[-4:] = struct.pack(">I", crc32_mpeg2(bytes(section[:-4])))
    splice = parse_splice_info(bytes(section)).splice
    assert splice is not None and splice.pts == 90


def test_splice_null_and_cancel_are_not_splices():
    null = bytes.fromhex("fc301100000000000000fff0000000007a4fbfff")
    null = null[:-4] + struct.pack(">I", crc32_mpeg2(null[:-4]))
    assert parse_splice_info(null).splice is None
    cancel = bytearray(splice_insert_section(event_id=5, out=True, pts=1, duration=None))
    cancel[18] = 0xFF  # splice_event_cancel_indicator
    cancel[-4:] = struct.pack(">I", crc32_mpeg2(bytes(cancel[:-4])))
    assert parse_splice_info(bytes(cancel)).splice is None


def test_every_single_bit_flip_is_caught():
    for index in range(len(SPLICE_INSERT_EXAMPLE) * 8):
        damaged = bytearray(SPLICE_INSERT_EXAMPLE)
        damaged[index // 8] ^= 0x80 >> (index % 8)
        with pytest.raises(Scte35Error):
            parse_splice_info(bytes(damaged))


def test_truncated_and_padded_sections_are_refused_with_a_reason():
    for length in range(len(TIME_SIGNAL_EXAMPLE)):
        with pytest.raises(Scte35Error) as refused:
            parse_splice_info(TIME_SIGNAL_EXAMPLE[:length])
        assert refused.value.reason == "truncated"
    with pytest.raises(Scte35Error) as refused:
        parse_splice_info(TIME_SIGNAL_EXAMPLE + b"\xff")
    assert refused.value.reason == "length"


def _resealed(section: bytearray) -> bytes:
    section[-4:] = struct.pack(">I", crc32_mpeg2(bytes(section[:-4])))
    return bytes(section)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda s: s.__setitem__(0, 0xFD), "table_id"),
        (lambda s: s.__setitem__(4, s[4] | 0x80), "encrypted"),
        (lambda s: s.__setitem__(13, 0x07), "command"),  # bandwidth_reservation: not a splice
        (lambda s: s.__setitem__(3, 1), "version"),
        (lambda s: s.__setitem__(12, s[12] + 3), "length"),  # the command overlaps the descriptor loop
    ],
)
def test_well_sealed_nonsense_is_refused(change, reason):
    section = bytearray(SPLICE_INSERT_EXAMPLE)
    change(section)
    with pytest.raises(Scte35Error) as refused:
        parse_splice_info(_resealed(section))
    assert refused.value.reason == reason


def test_a_command_that_ends_inside_a_field_is_refused():
    section = bytearray(SPLICE_INSERT_EXAMPLE)
    # Claim a component splice (program_splice_flag 0) with 255 components in a 20-byte command.
    section[19] &= ~0x40 & 0xFF
    section[20] = 0xFF
    with pytest.raises(Scte35Error) as refused:
        parse_splice_info(_resealed(section))
    assert refused.value.reason == "truncated"
