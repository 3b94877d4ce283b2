"""RTP (RFC 3550) carrying MPEG-TS (RFC 2250, payload type 33): the header off, gaps counted.

A UDP contribution may be plain TS (datagrams start with the 0x47 sync byte) or RTP; the
first datagram decides.  RTP sequence numbers are 16-bit: a gap is counted (lost datagrams,
the TS demuxer then drops the frames they held), a repeat or a packet from the past is
dropped, and the counter's wrap is not a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

PAYLOAD_MP2T = 33


class RtpError(ValueError):
    pass


def looks_like_rtp(datagram: bytes) -> bool:
    return len(datagram) >= 12 and datagram[0] >> 6 == 2 and datagram[0] != 0x47


def rtp_payload(datagram: bytes) -> tuple[int, int, bytes]:
    """(payload type, sequence number, payload) of one RTP packet."""
    if len(datagram) < 12 or datagram[0] >> 6 != 2:
        raise RtpError("not an RTP version 2 packet")
    csrc = datagram[0] & 0x0F
    offset = 12 + 4 * csrc
    if datagram[0] & 0x10:  # header extension: 16-bit profile, 16-bit length in words
        if len(datagram) < offset + 4:
            raise RtpError("truncated RTP header extension")
        offset += 4 + 4 * int.from_bytes(datagram[offset + 2 : offset + 4], "big")
    end = len(datagram)
    if datagram[0] & 0x20:  # padding: the last byte says how much
        end -= datagram[-1]
    if offset > end:
        raise RtpError("RTP header longer than the packet")
    return datagram[1] & 0x7F, int.from_bytes(datagram[2:4], "big"), datagram[offset:end]


@dataclass
class RtpReceiver:
    lost: int = 0  # datagrams missing from the sequence
    late: int = 0  # repeats and datagrams from the past (dropped)
    wrong_type: int = 0
    _next: int | None = None

    def receive(self, datagram: bytes) -> bytes | None:
        """The TS bytes of a datagram, or None when it is to be dropped (raises RtpError on a malformed one)."""
        if len(datagram) >= 12 and datagram[0] == 0x80:  # no padding, extension or CSRC: what senders send
            payload_type, sequence, payload = datagram[1] & 0x7F, datagram[2] << 8 | datagram[3], datagram[12:]
        else:
            payload_type, sequence, payload = rtp_payload(datagram)
        if payload_type != PAYLOAD_MP2T:
            self.wrong_type += 1
            return None
        if self._next is not None:
            ahead = (sequence - self._next) & 0xFFFF
            if ahead >= 0x8000:
                self.late += 1
                return None
            self.lost += ahead
        self._next = (sequence + 1) & 0xFFFF
        return payload
