"""Key delivery's token rules and the key tags of encrypted playlists (pure)."""

import jwt
import pytest
from timeline_fixtures import ladder_timeline

from kubecast.api.components import ContentProtectionConfig
from kubecast.endpoint import hls
from kubecast.endpoint.protection import CHANNEL_CLAIM, JwtRule, Protection, Refusal, request_token
from kubecast.media.keys import KeyDeriver

NOW = 1_800_000_000
KEY = b"a key that signs the viewers' tokens"
RULE = JwtRule(KEY, issuer="https://sts.example", audience="kubecast")


def token(claims=None, *, key=KEY, algorithm="HS256", **changes):
    body = {"iss": "https://sts.example", "aud": "kubecast", "exp": NOW + 60, **changes, **(claims or {})}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm=algorithm)


def test_a_valid_jwt_opens_the_keys():
    assert RULE.check(token(), channel="news", now=NOW) is None
    assert RULE.check(token({CHANNEL_CLAIM: "news"}), channel="news", now=NOW) is None
    assert JwtRule(KEY).check(token(iss="anyone", aud="anything"), channel="news", now=NOW) is None


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (None, Refusal.MISSING),
        ("", Refusal.MISSING),
        ("not.a.jwt", Refusal.MALFORMED),
        ("x" * 5000, Refusal.MALFORMED),
        (token(key=b"another key of the same length!!!!!!"), Refusal.BAD_SIGNATURE),
        (token(exp=NOW), Refusal.EXPIRED),
        (token(exp=NOW - 3600), Refusal.EXPIRED),
        (token(exp=None), Refusal.WRONG_CLAIMS),
        (token(iss="https://evil.example"), Refusal.WRONG_CLAIMS),
        (token(aud="someone-else"), Refusal.WRONG_CLAIMS),
        (token({CHANNEL_CLAIM: "sport"}), Refusal.OUT_OF_SCOPE),
        (
            jwt.encode({"iss": "https://sts.example", "aud": "kubecast", "exp": NOW + 60}, None, algorithm="none"),
            Refusal.MALFORMED,
        ),
    ],
)
def test_bad_tokens_are_refused_with_their_reason(bad, reason):
    assert RULE.check(bad, channel="news", now=NOW) is reason
    assert reason.status == (401 if reason is Refusal.MISSING else 403)


def test_the_token_comes_from_the_header_or_the_query():
    assert request_token({"Authorization": "Bearer abc"}, {"token": "query"}) == "abc"
    assert request_token({"Authorization": "bearer abc"}, {}) == "abc"
    assert request_token({}, {"token": "query"}) == "query" and request_token({"Authorization": "Basic x"}, {}) is None


def test_from_config_needs_a_master_key_of_16_bytes_and_a_jwt_key_when_delivery_is_restricted():
    config = ContentProtectionConfig.model_validate(
        {
            "masterKeyFile": "/keys/master",
            "keyRotationSegments": 3,
            "keyDelivery": {"jwtKeyFile": "/keys/jwt", "audience": "kubecast"},
        }
    )
    protection = Protection.from_config(config, master_key="00" * 16, jwt_key=b"k")
    assert protection.rotation_segments == 3 and protection.jwt == JwtRule(b"k", None, "kubecast")
    with pytest.raises(ValueError):
        Protection.from_config(config, master_key="00" * 8, jwt_key=b"k")
    with pytest.raises(ValueError):
        Protection.from_config(config, master_key="00" * 16, jwt_key=b"")
    open_config = ContentProtectionConfig.model_validate({"masterKeyFile": "/keys/master"})
    assert Protection.from_config(open_config, master_key="00" * 16, jwt_key=None).jwt is None


def test_media_playlists_name_a_key_where_it_changes_before_the_segment_it_encrypts():
    timeline = ladder_timeline(numbers=range(10, 16))
    track = timeline.tracks[0]
    protection = Protection(KeyDeriver(bytes(16)), rotation_segments=3)
    playlist = hls.media_playlist(timeline, track, key_tag=protection.key_tag("news", keys_path="../keys/"))
    lines = playlist.splitlines()
    keys = [line for line in lines if line.startswith("#EXT-X-KEY")]
    assert [line.split('URI="')[1].split('"')[0] for line in keys] == [
        "../keys/3.key",
        "../keys/4.key",
        "../keys/5.key",
    ]
    assert lines.index(keys[0]) > lines.index('#EXT-X-MAP:URI="init.mp4"'), "the init segment stays clear"
    assert lines[lines.index(keys[1]) + 2] == "12.m4s" and lines[lines.index(keys[2]) + 2] == "15.m4s"
    assert f"IV=0x{protection.key_for('news', 12).iv.hex()}" in keys[1]
    assert "#EXT-X-KEY" not in hls.media_playlist(timeline, track)


def test_clearkey_licences_answer_the_requested_key_ids_of_the_stream_only():
    import base64
    import json

    from kubecast.endpoint.protection import LicenseError, clearkey_license

    keys = KeyDeriver(bytes(16))
    mine, other = keys.for_scheme("news", "cenc"), keys.for_scheme("sport", "cenc")
    b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    answer = clearkey_license(
        json.dumps({"kids": [b64(mine.key_id), b64(other.key_id)], "type": "temporary"}).encode(), [mine]
    )
    assert answer == {"keys": [{"kty": "oct", "kid": b64(mine.key_id), "k": b64(mine.key)}], "type": "temporary"}
    assert mine.key != keys.for_scheme("news", "cbcs").key and mine.key != keys.for_period("news", 0).key
    for bad in (
        b"",
        b"{}",
        b'{"kids": []}',
        b'{"kids": "abc"}',
        b'{"kids": [1]}',
        b"\xff",
        json.dumps({"kids": [b64(other.key_id)]}).encode(),
    ):
        with pytest.raises(LicenseError):
            clearkey_license(bad, [mine])
