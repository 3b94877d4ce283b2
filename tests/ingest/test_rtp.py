import pytest

from kubecast.ingest.mpegts.rtp import RtpError, RtpReceiver, looks_like_rtp, rtp_payload


def rtp(
    sequence: int,
    payload: bytes = b"\x47" + bytes(187),
    *,
    payload_type=33,
    csrc=0,
    extension: bytes | None = None,
    padding=0,
) -> bytes:
    first = 0x80 | csrc | (0x10 if extension is not None else 0) | (0x20 if padding else 0)
    header = (
        bytes([first, payload_type])
        + sequence.to_bytes(2, "big")
        + (1234).to_bytes(4, "big")
        + (99).to_bytes(4, "big")
        + bytes(4 * csrc)
    )
    if extension is not None:
        header += b"\xbe\xde" + (len(extension) // 4).to_bytes(2, "big") + extension
    return header + payload + (bytes(padding - 1) + bytes([padding]) if padding else b"")


def test_header_csrc_extension_and_padding_come_off():
    ts = b"\x47" + bytes(187)
    assert rtp_payload(rtp(7, ts, csrc=2, extension=bytes(8), padding=4)) == (33, 7, ts)
    assert looks_like_rtp(rtp(1)) and not looks_like_rtp(ts)


@pytest.mark.parametrize(
    "datagram",
    [
        b"\x80\x21",  # shorter than the fixed header
        bytes([0x90, 33, 0, 1]) + bytes(8),  # an extension flag with no extension
        bytes([0x40]) + bytes(20),  # version 1
        bytes([0xA0, 33, 0, 1]) + bytes(8) + b"\xff",  # more padding than packet
    ],
    ids=["short", "extension", "version", "padding"],
)
def test_malformed_packets_are_refused(datagram):
    with pytest.raises(RtpError):
        rtp_payload(datagram)


def test_gaps_are_counted_repeats_dropped_and_the_wrap_is_not_a_gap():
    receiver = RtpReceiver()
    results = [receiver.receive(rtp(n)) for n in (65533, 65534, 65535, 0, 2, 2, 1, 3)]
    assert [r is not None for r in results] == [True, True, True, True, True, False, False, True]
    assert (receiver.lost, receiver.late) == (1, 2)
    assert receiver.receive(rtp(4, payload_type=96)) is None and receiver.wrong_type == 1
