import ipaddress
import json

import pytest

from kubecast.ingest.config import ChannelRoute, ConfigError, IngestConfig, decide, load_config
from kubecast.ingest.rtmp import chunks
from kubecast.ingest.rtmp.server import check_codec
from kubecast.ingest.rtmp.session import Media

CONFIG = IngestConfig(
    channels={
        "news": ChannelRoute("news", "k-news", (("127.0.0.1", 1),)),
        "sport": ChannelRoute("sport", "k-sport", (("127.0.0.1", 2),), (ipaddress.ip_network("10.0.0.0/8"),)),
        "open": ChannelRoute("open", None, (("127.0.0.1", 3),)),
    }
)


@pytest.mark.parametrize(
    ("app", "name", "peer", "channel", "label"),
    [
        ("live", "k-news", "127.0.0.1", "news", "accepted"),  # found by key
        ("live", "news/k-news", "127.0.0.1", "news", "accepted"),
        ("news", "k-news", "127.0.0.1", "news", "accepted"),  # app names the channel
        ("live", "news/k-sport", "127.0.0.1", None, "bad_key"),  # another channel's key
        ("live", "wrong", "127.0.0.1", None, "bad_key"),
        ("live", "sport/k-sport", "192.0.2.1", None, "not_allowed"),
        ("live", "sport/k-sport", "10.1.2.3", "sport", "accepted"),
        ("live", "open/anything", "127.0.0.1", "open", "accepted"),
        ("live", "anything", "127.0.0.1", None, "bad_key"),  # a keyless channel must be named
        ("", "", "127.0.0.1", None, "bad_name"),
        ("live", "news/k-news/a/b", "127.0.0.1", None, "bad_name"),
    ],
)
def test_publish_decisions(app, name, peer, channel, label):
    decision = decide(CONFIG, app=app, name=name, peer=peer)
    assert (decision.route.name if decision.route else None, decision.label) == (channel, label)
    assert "k-news" not in decision.reason and "k-sport" not in decision.reason, "a key never reaches a log line"


@pytest.mark.parametrize(
    ("name", "channel", "rendition"),
    [
        ("k-news/720p", "news", "720p"),
        ("news/k-news/360p", "news", "360p"),
        ("open/x/hd", "open", "hd"),
        ("k-news", "news", ""),
    ],
)
def test_a_rendition_name_after_the_key_makes_one_rendition_of_a_multibitrate_contribution(name, channel, rendition):
    decision = decide(CONFIG, app="live", name=name, peer="127.0.0.1")
    assert (decision.route.name, decision.rendition) == (channel, rendition)


async def test_renditions_share_one_publication_and_a_second_publisher_is_refused():
    from kubecast.ingest.publication import Busy, Publications

    route = ChannelRoute("news", "k-news", ())
    publications = Publications()
    first = publications.join(route, name="720p", session_id="s1", protocol="RTMP")
    second = publications.join(route, name="360p", session_id="s2", protocol="RTMP")
    assert (first.track, second.track) == (0, 1) and first.publication is second.publication
    for name in ("720p", ""):
        with pytest.raises(Busy):
            publications.join(route, name=name, session_id="s3", protocol="RTMP")
    await publications.leave(first)
    assert publications.live("news"), "the contribution goes on while a rendition is published"
    third = publications.join(route, name="180p", session_id="s4", protocol="RTMP")
    assert third.track == 0, "the lowest free rendition index"
    await publications.leave(second)
    await publications.leave(third)
    assert not publications.live("news")


def test_config_file(tmp_path):
    (tmp_path / "key").write_text("secret\n")
    (tmp_path / "ingest.json").write_text(
        json.dumps(
            {
                "channels": {
                    "news": {
                        "streamKeyFile": str(tmp_path / "key"),
                        "encoders": ["127.0.0.1:7000"],
                        "allowedIps": ["10.0.0.0/8"],
                    }
                },
                "idleTimeout": 5,
            }
        )
    )
    config = load_config(tmp_path / "ingest.json")
    assert config.channels["news"].key == "secret" and config.channels["news"].encoders == (("127.0.0.1", 7000),)
    assert config.idle_timeout == 5
    (tmp_path / "bad.json").write_text(json.dumps({"channels": {"news": {"encoders": ["nohost"]}}}))
    with pytest.raises(ConfigError, match="HOST:PORT"):
        load_config(tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("media", "refused"),
    [
        (Media(chunks.VIDEO, 0, b"\x17\x01"), False),
        (Media(chunks.VIDEO, 0, b"\x1c\x01"), True),  # HEVC (codec id 12)
        (Media(chunks.VIDEO, 0, b"\x90hvc1"), True),  # enhanced RTMP
        (Media(chunks.AUDIO, 0, b"\xaf\x01"), False),
        (Media(chunks.AUDIO, 0, b"\x2f\x01"), True),  # MP3
        (Media(chunks.AUDIO, 0, b"\x95\x00mp4a\x01\x11\x90"), False),  # Enhanced RTMP multitrack AAC (FFmpeg 8, OBS 30)
        (Media(chunks.AUDIO, 0, b"\x90mp4a\x11\x90"), False),  # Enhanced RTMP single-track AAC
        (Media(chunks.AUDIO, 0, b"\x95\x00Opus\x01\x00"), True),  # Enhanced RTMP Opus
        (Media(chunks.AUDIO, 0, b"\x95\x21mp4a\x01\x00\x00\x00Opus\x02\x00\x00\x00"), True),  # one of two
    ],
)
def test_codecs(media, refused):
    assert (check_codec(media) is not None) == refused
