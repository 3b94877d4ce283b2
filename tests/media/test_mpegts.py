from kubecast.media.adts import audio_specific_config, split_adts
from kubecast.media.tspes import WRAP, Unwrap


def test_timestamps_keep_growing_across_the_33_bit_wrap():
    unwrap = Unwrap()
    values = [WRAP - 6000, WRAP - 3000, 0, 3000, WRAP - 1500, 6000]  # one late frame from before the wrap
    assert [unwrap(v) for v in values] == [WRAP - 6000, WRAP - 3000, WRAP, WRAP + 3000, WRAP - 1500, WRAP + 6000]


def adts(payload: bytes, *, rate_index=3, channels=2) -> bytes:
    length = 7 + len(payload)
    header = bytes(
        [
            0xFF,
            0xF1,
            (1 << 6) | (rate_index << 2) | (channels >> 2),
            ((channels & 3) << 6) | (length >> 11),
            (length >> 3) & 0xFF,
            ((length & 7) << 5) | 0x1F,
            0xFC,
        ]
    )
    return header + payload


def test_adts_frames_and_their_audio_specific_config():
    frames, damaged = split_adts(adts(b"one") + b"junk" + adts(b"two!"))
    assert [f.payload for f in frames] == [b"one", b"two!"] and damaged == 4
    assert frames[0].config == audio_specific_config(2, 3, 2) == bytes([0x11, 0x90]) and frames[0].sample_rate == 48000
    truncated, damaged = split_adts(adts(b"whole") + adts(b"cut short")[:9])
    assert [f.payload for f in truncated] == [b"whole"] and damaged == 9
