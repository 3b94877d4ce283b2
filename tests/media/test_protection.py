"""Content protection primitives against real peers: ffmpeg decrypts what we encrypt.

The proof that samples are encrypted, and correctly: ffmpeg's decoded frames (framemd5) of
the protected stream equal the clear stream's with the key, and differ without it or with
a wrong key (a cbcs stream leaves most bytes clear, so a failing decode proves nothing).
"""

import subprocess
import uuid

import pytest
from cmaf_content import make_cmaf_tracks

from kubecast.media import aes128, cenc
from kubecast.media.fmp4 import BoxStream, parse_fragment, parse_init
from kubecast.media.keys import KeyDeriver, key_period, parse_master_key
from kubecast.media.mp4 import find_box, iter_boxes, parse_media_segment
from kubecast.media.tsmux import TsSample, mux_segment

MASTER = bytes(range(32))


@pytest.fixture(scope="module")
def tracks(tmp_path_factory):
    return make_cmaf_tracks(tmp_path_factory.mktemp("cmaf"), seconds=3)


def framemd5(path, *options: str, pipe: bool = False) -> list[str]:
    """ffmpeg's per-frame MD5s of the first stream.  ``pipe``: the file is read as a stream, as
    from HTTP (Debian's ffmpeg 5.1, given a seekable fragmented file, reads every moof first
    and then decrypts each sample with the last fragment's encryption info)."""
    source = "pipe:0" if pipe else str(path)
    result = subprocess.run(
        ["ffmpeg", "-v", "error", *options, "-i", source, "-map", "0:0", "-f", "framemd5", "-"],
        input=path.read_bytes() if pipe else None,
        capture_output=True,
        timeout=60,
    )
    return [
        line.split(",")[-1].strip() for line in result.stdout.decode().splitlines() if line and not line.startswith("#")
    ]


def test_keys_are_deterministic_per_channel_and_period():
    one, again = KeyDeriver(MASTER), KeyDeriver(bytes(MASTER))
    key = one.for_period("news", 0)
    assert again.for_period("news", 0) == key and one.for_key_id(key.key_id) == key
    assert (
        len(
            {
                one.key_id("news", 0),
                one.key_id("news", 1),
                one.key_id("sport", 0),
                KeyDeriver(MASTER[::-1]).key_id("news", 0),
            }
        )
        == 4
    )
    assert len({key.key, key.iv, key.key_id}) == 3 and all(len(v) == 16 for v in (key.key, key.iv, key.key_id))
    assert [key_period(n, 3) for n in (0, 2, 3, 7)] == [0, 0, 1, 2] and key_period(99, 0) == 0
    assert parse_master_key(MASTER.hex()) == MASTER and parse_master_key("AAECAwQFBgcICQoLDA0ODw==") == MASTER[:16]
    for bad in ("00ff", "not a key!", ""):
        with pytest.raises(ValueError):
            parse_master_key(bad)


def test_aes128_segments_decrypt_in_ffmpeg_with_the_key_uri(tmp_path, tracks):
    video, audio = tracks
    key = KeyDeriver(MASTER).for_period("news", 0)
    (tmp_path / "k.key").write_bytes(key.key)
    numbers = sorted(video.segments)

    video_config, audio_config = parse_init(video.init)[0], parse_init(audio.init)[0]

    def ts(number):
        samples = []
        for track in (video, audio):
            boxes = dict(BoxStream().feed(track.segments[number]))
            samples.append(
                [
                    TsSample(s.decode_time, s.composition_offset, s.keyframe, s.data)
                    for s in next(iter(parse_fragment(boxes[b"moof"], boxes[b"mdat"]).values()))
                ]
            )
        return mux_segment(
            avcc=video_config.codec_config,
            video_timescale=90000,
            video=samples[0],
            asc=audio_config.codec_config,
            audio_timescale=48000,
            audio=samples[1],
        )

    for form, name, write in (("fmp4", "m4s", lambda n: video.segments[n]), ("ts", "ts", ts)):
        folder = tmp_path / form
        folder.mkdir()
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
        if form == "fmp4":
            (folder / "init.mp4").write_bytes(video.init)
            lines.append('#EXT-X-MAP:URI="init.mp4"')
        (folder / "clear.m3u8").write_text(
            "\n".join(lines + [x for n in numbers for x in ("#EXTINF:1.0,", f"c{n}.{name}")] + ["#EXT-X-ENDLIST", ""])
        )
        lines.append(f'#EXT-X-KEY:METHOD=AES-128,URI="{tmp_path / "k.key"}",IV=0x{key.iv.hex()}')
        (folder / "enc.m3u8").write_text(
            "\n".join(lines + [x for n in numbers for x in ("#EXTINF:1.0,", f"e{n}.{name}")] + ["#EXT-X-ENDLIST", ""])
        )
        for n in numbers:
            clear = write(n)
            (folder / f"c{n}.{name}").write_bytes(clear)
            encrypted = aes128.encrypt_segment(clear, key=key.key, iv=key.iv)
            assert len(encrypted) % 16 == 0 and encrypted[:64] != clear[:64]
            (folder / f"e{n}.{name}").write_bytes(encrypted)
        options = ("-allowed_extensions", "ALL")
        expected = framemd5(folder / "clear.m3u8", *options)
        assert len(expected) >= 60, form
        assert framemd5(folder / "enc.m3u8", *options) == expected, form
        (tmp_path / "k.key").write_bytes(bytes(16))
        assert framemd5(folder / "enc.m3u8", *options) != expected, form
        (tmp_path / "k.key").write_bytes(key.key)


def _protected_file(path, track, scheme, key, *, video):
    pssh = [cenc.pssh(cenc.CLEARKEY_SYSTEM_ID, [key.key_id]), cenc.pssh(cenc.COMMON_SYSTEM_ID, [key.key_id])]
    init = cenc.protect_init(track.init, scheme=scheme, key_id=key.key_id, constant_iv=key.iv, pssh_boxes=pssh)
    start = cenc.sample_iv_start(key.key, track.info.id)
    segments = [
        cenc.protect_segment(
            track.segments[n], scheme=scheme, key=key.key, constant_iv=key.iv, video=video, iv_start=start
        )
        for n in sorted(track.segments)
    ]
    path.write_bytes(init + b"".join(segments))
    return init, segments


@pytest.mark.parametrize("scheme", ["cenc", "cbcs"])
def test_cenc_and_cbcs_decrypt_in_ffmpeg_with_the_key_and_not_without(tmp_path, tracks, scheme):
    key = KeyDeriver(MASTER).for_period("news", 0)
    for track, video in zip(tracks, (True, False)):
        clear = tmp_path / f"clear-{track.info.id}.mp4"
        clear.write_bytes(track.init + b"".join(track.segments[n] for n in sorted(track.segments)))
        protected = tmp_path / f"{scheme}-{track.info.id}.mp4"
        init, segments = _protected_file(protected, track, scheme, key, video=video)
        expected = framemd5(clear)
        assert len(expected) >= (60 if video else 100)
        assert framemd5(protected, "-decryption_key", key.key.hex(), pipe=True) == expected, track.info.id
        assert framemd5(protected, "-decryption_key", bytes(16).hex(), pipe=True) != expected, track.info.id
        assert framemd5(protected, pipe=True) != expected, track.info.id
        # the protected samples keep their sizes and times: only the bytes change, most of them
        # (cbcs video: about one block in ten)
        changed = total = 0
        for number, segment in zip(sorted(track.segments), segments):
            _time, samples = parse_media_segment(segment)
            assert (_time, samples) == parse_media_segment(track.segments[number])
            size = sum(sample.size for sample in samples)
            changed += sum(a != b for a, b in zip(segment[-size:], track.segments[number][-size:]))
            total += size
        assert changed / total > {("cenc", True): 0.8, ("cbcs", True): 0.08}.get((scheme, video), 0.9), (
            scheme,
            video,
            changed / total,
        )


def test_init_carries_the_scheme_key_id_and_pssh(tracks):
    key = KeyDeriver(MASTER).for_period("news", 0)
    video, _audio = tracks
    for scheme in cenc.SCHEMES:
        init = cenc.protect_init(
            video.init,
            scheme=scheme,
            key_id=key.key_id,
            constant_iv=key.iv,
            pssh_boxes=[cenc.pssh(cenc.CLEARKEY_SYSTEM_ID, [key.key_id])],
        )
        stsd = find_box(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
        ((kind, start, end),) = list(iter_boxes(init, stsd[0] + 8, stsd[1]))
        assert kind == b"encv"
        frma = find_box(init, [b"sinf", b"frma"], start + 78, end)
        schm = find_box(init, [b"sinf", b"schm"], start + 78, end)
        tenc = find_box(init, [b"sinf", b"schi", b"tenc"], start + 78, end)
        assert init[frma[0] : frma[1]] == b"avc1" and init[schm[0] + 4 : schm[0] + 8] == scheme.encode()
        assert init[tenc[0] + 8 : tenc[0] + 24] == key.key_id
        pssh_at = find_box(init, [b"moov", b"pssh"])
        assert init[pssh_at[0] + 4 : pssh_at[0] + 20] == uuid.UUID("e2719d58-a985-b3c9-781a-b030af78d30e").bytes


def test_subsamples_leave_parameter_sets_and_slice_headers_clear():
    sps = b"\x00\x00\x00\x05" + b"\x67" + b"s" * 4
    slice_ = (200).to_bytes(4, "big") + b"\x65" + b"x" * 199
    cenc_map = cenc.avc_subsamples(sps + slice_, length_size=4, scheme="cenc")
    assert sum(s.clear + s.protected for s in cenc_map) == len(sps + slice_)
    assert (
        cenc_map[0].clear >= 9 + 4 + 32
        and all(s.protected % 16 == 0 for s in cenc_map)
        and cenc_map[0].protected == 160
    )
    assert cenc.avc_subsamples(sps, length_size=4, scheme="cbcs") == [cenc.Subsample(9, 0)]


def test_saiz_lists_sizes_when_samples_carry_no_auxiliary_bytes(tracks):
    """cbcs audio has no IV and no subsamples per sample: saiz's default size 0 would mean "a
    table follows", so the table (of zeros) is written; Chromium refuses the fragment otherwise."""
    key = KeyDeriver(MASTER).for_scheme("news", "cbcs")
    _video, audio = tracks
    number = sorted(audio.segments)[0]
    segment = cenc.protect_segment(audio.segments[number], scheme="cbcs", key=key.key, constant_iv=key.iv, video=False)
    start, end = find_box(segment, [b"moof", b"traf", b"saiz"])
    count = int.from_bytes(segment[start + 5 : start + 9], "big")
    assert (
        segment[start + 4] == 0
        and count == len(parse_media_segment(audio.segments[number])[1])
        and segment[start + 9 : end] == bytes(count)
    )
