import pytest

from kubecast.storage import InvalidKey, Store, check_key, layout


@pytest.fixture(params=["local", "memory", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return Store(str(tmp_path / "store"))
    if request.param == "memory":
        return Store("memory://")
    return Store(request.getfixturevalue("s3_store_url"))


async def test_round_trip(store):
    key = layout.segment_key("news", "A", "video_720p", 17)
    assert await store.get(key) is None and await store.head(key) is None
    await store.put(key, b"0123456789")
    assert await store.get(key) == b"0123456789"
    assert await store.get_range(key, 2, 5) == b"234"
    assert (await store.head(key)).size == 10
    await store.put(layout.timeline_key("news"), b"{}")
    keys = sorted(info.key for info in await store.list(layout.channel_prefix("news")))
    assert keys == ["channels/news/encoders/A/video_720p/17.m4s", "channels/news/timeline.json"]
    await store.delete(key)
    await store.delete(key)  # deleting twice is not an error
    assert await store.get(key) is None


def test_sync_round_trip(store):
    key = layout.progress_key("news", "B")
    store.put_sync(key, b"one")
    store.put_sync(key, b"two")  # index objects are replaced whole
    assert store.get_sync(key) == b"two"
    assert [info.key for info in store.list_sync("channels/news")] == [key]


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "channels/../../x", "/abs", "a//b", "a/./b", "a/b/", "", "a\\b", "a/%2e%2e/b", "channels/x y"],
)
def test_keys_that_could_escape_are_refused(key):
    with pytest.raises(InvalidKey):
        check_key(key)


async def test_store_refuses_bad_keys_before_the_backend(tmp_path):
    store = Store(str(tmp_path / "store"))
    (tmp_path / "secret").write_text("outside")
    with pytest.raises(InvalidKey):
        await store.get("../secret")


def test_init_names_are_content_addressed():
    assert layout.init_name(b"a") == layout.init_name(b"a") != layout.init_name(b"b")
    assert layout.init_name(b"a").startswith("init-") and layout.init_name(b"a").endswith(".mp4")


def test_conditional_create_has_one_winner_on_every_backend(store):
    """Both encoders write the channel's epochs this way; a backend that overwrote would let
    them disagree on segment numbers."""
    key = layout.epoch_key("news", 0)
    assert store.put_new_sync(key, b"A") is True
    assert store.put_new_sync(key, b"B") is False
    assert store.get_sync(key) == b"A"
