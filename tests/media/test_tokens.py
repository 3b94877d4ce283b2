"""Signed-URL tokens: every way a token can be wrong is refused, with its own reason."""

import pytest

from kubecast.media.tokens import Reason, Verifier, check_scope, in_scope, sign, verify

KEYS = {"k1": b"first secret key", "k2": b"second secret key"}
NOW = 1_800_000_000


def token(scope="channel:demo", key_id="k1", expires=NOW + 60, key=None):
    return sign(key=key or KEYS[key_id], key_id=key_id, scope=scope, expires=expires)


@pytest.mark.parametrize(
    "scope,path",
    [
        ("channel:demo", "/live/demo/index.m3u8"),
        ("channel:demo", "/live/demo/v720/12.m4s"),
        ("channel:demo", "/preview/demo/"),
        ("channel:demo", "/preview/demo/thumbnail.jpg"),
        ("program:show", "/show/index.ism/manifest(format=m3u8-cmaf)"),
        ("prefix:/", "/live/other/index.m3u8"),
        ("prefix:/live/", "/live/demo/manifest.mpd"),
    ],
)
def test_a_good_token_opens_its_scope(scope, path):
    decision = verify(token(scope), path, NOW, KEYS)
    assert decision.allowed and decision.status == 200 and decision.key_id == "k1"


@pytest.mark.parametrize(
    "scope,path",
    [
        ("channel:demo", "/live/demo2/index.m3u8"),
        ("channel:demo", "/live/other/index.m3u8"),
        ("channel:demo", "/show/index.m3u8"),
        ("program:show", "/showcase/index.m3u8"),
        ("program:show", "/live/show/index.m3u8"),
        ("prefix:/live/demo/", "/preview/demo/"),
    ],
)
def test_out_of_scope_is_refused(scope, path):
    decision = verify(token(scope), path, NOW, KEYS)
    assert (decision.allowed, decision.reason, decision.status) == (False, Reason.OUT_OF_SCOPE, 403)


def test_every_broken_token_has_its_reason():
    good = token()
    kid, expires, scope, signature = good.split(".")
    cases = {
        None: Reason.MISSING,
        "": Reason.MISSING,
        "garbage": Reason.MALFORMED,
        f"{kid}.{expires}.{scope}": Reason.MALFORMED,
        f"{kid}.soon.{scope}.{signature}": Reason.MALFORMED,
        "x" * 600: Reason.MALFORMED,
        f"k9.{expires}.{scope}.{signature}": Reason.UNKNOWN_KEY,
        f"{kid}.{expires}.{scope}.{signature[:-2]}AA": Reason.BAD_SIGNATURE,
        f"{kid}.{int(expires) + 3600}.{scope}.{signature}": Reason.BAD_SIGNATURE,  # a longer life is a forgery
        token(scope="prefix:/", key=b"not the key"): Reason.BAD_SIGNATURE,
        f"k2.{expires}.{scope}.{signature}": Reason.BAD_SIGNATURE,  # signed by k1, claims k2
        token(expires=NOW - 1): Reason.EXPIRED,
        token(expires=NOW): Reason.EXPIRED,
    }
    for candidate, reason in cases.items():
        decision = verify(candidate, "/live/demo/index.m3u8", NOW, KEYS)
        assert (decision.allowed, decision.reason) == (False, reason), candidate
        assert decision.status == (401 if reason is Reason.MISSING else 403)


def test_a_widened_scope_breaks_the_signature():
    kid, expires, _, signature = token("channel:demo").split(".")
    import base64

    wider = base64.urlsafe_b64encode(b"prefix:/").rstrip(b"=").decode()
    assert (
        verify(f"{kid}.{expires}.{wider}.{signature}", "/live/other/index.m3u8", NOW, KEYS).reason
        is Reason.BAD_SIGNATURE
    )


def test_rotation_two_keys_live_then_the_old_one_dropped():
    old, new = token(key_id="k1"), token(key_id="k2")
    assert verify(old, "/live/demo/index.m3u8", NOW, KEYS).allowed
    assert verify(new, "/live/demo/index.m3u8", NOW, KEYS).allowed
    after = {"k2": KEYS["k2"]}
    assert verify(old, "/live/demo/index.m3u8", NOW, after).reason is Reason.UNKNOWN_KEY
    assert verify(new, "/live/demo/index.m3u8", NOW, after).allowed


def test_tokens_are_one_path_element():
    for scope in ("channel:demo", "program:show", "prefix:/live/demo/", "prefix:/"):
        assert "/" not in token(scope) and "?" not in token(scope) and "%" not in token(scope)


@pytest.mark.parametrize(
    "scope", ["demo", "channel:", "channel:../x", "program:a/b", "prefix:live", "prefix:/a/../b", "other:x"]
)
def test_bad_scopes_are_refused_when_signing(scope):
    with pytest.raises(ValueError):
        check_scope(scope)
    with pytest.raises(ValueError):
        sign(key=b"k", key_id="k1", scope=scope, expires=NOW)


def test_bad_key_ids_and_empty_keys_are_refused():
    with pytest.raises(ValueError):
        sign(key=b"k", key_id="a.b", scope="prefix:/", expires=NOW)
    with pytest.raises(ValueError):
        sign(key=b"", key_id="k1", scope="prefix:/", expires=NOW)


def test_unknown_scope_kind_opens_nothing():
    assert not in_scope("other:/", "/live/demo/index.m3u8")


def test_the_verifier_checks_a_signature_once_and_judges_expiry_and_scope_every_time(monkeypatch):
    import kubecast.media.tokens as tokens

    token = sign(key=KEYS["k1"], key_id="k1", scope="channel:news", expires=NOW + 60)
    others = [sign(key=KEYS["k1"], key_id="k1", scope="channel:news", expires=NOW + 60 + n) for n in range(1, 4)]
    checked = []
    real = tokens._signature
    monkeypatch.setattr(tokens, "_signature", lambda *args: checked.append(args[1]) or real(*args))
    verifier = Verifier(KEYS, remember=2)
    for path in ("/live/news/index.m3u8", "/live/news/v720/1.m4s", "/live/news/v720/2.m4s"):
        assert verifier.verify(token, path, NOW).allowed
    assert checked == ["k1"], "one HMAC for the three requests"
    assert verifier.verify(token, "/live/sport/index.m3u8", NOW).reason is Reason.OUT_OF_SCOPE
    assert verifier.verify(token, "/live/news/index.m3u8", NOW + 60).reason is Reason.EXPIRED
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for _ in range(3):
        assert verifier.verify(forged, "/live/news/index.m3u8", NOW).reason is Reason.BAD_SIGNATURE
    assert checked == ["k1"] * 4, "a forged token is checked every time: it is never remembered"
    for other in others:
        assert verifier.verify(other, "/live/news/index.m3u8", NOW).allowed
    assert len(verifier._signed) <= 2, "bounded"
    assert verifier.verify(token, "/live/news/index.m3u8", NOW) == verify(token, "/live/news/index.m3u8", NOW, KEYS)
