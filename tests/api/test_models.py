import base64

import pytest

from kubecast.api import PRESETS, EncodingPreset, ManifestError, load_text, parse_iso_duration

CHANNEL = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: news}
spec:
  ingest:
    streamKeySecretRef: {name: news-key, key: streamKey}
    allowedIps: [10.0.0.0/8, "2001:db8::/32"]
  encoding: {preset: Default1080p}
  segmentDuration: 2
"""


def test_channel_defaults_and_ladder():
    channel = load_text(CHANNEL).channels["news"]
    assert channel.spec.segment_duration_ms == 2000
    ladder = channel.spec.encoding.ladder()
    assert [r.bitrate for r in ladder] == [r.bitrate for r in PRESETS["Default1080p"]]
    assert (ladder[0].width, ladder[0].height) == (1920, 1080)
    assert not channel.spec.encoding.passthrough


def test_default720p_is_the_ams_table():
    rows = [(r.bitrate // 1000, r.width, r.height) for r in PRESETS["Default720p"]]
    assert rows == [
        (3500, 1280, 720),
        (2200, 960, 540),
        (1350, 704, 396),
        (850, 512, 288),
        (550, 384, 216),
        (200, 340, 192),
    ]


def test_passthrough_has_no_ladder():
    channel = load_text(CHANNEL.replace("Default1080p", "None")).channels["news"]
    assert channel.spec.encoding.preset is EncodingPreset.NONE
    assert channel.spec.encoding.passthrough and channel.spec.encoding.ladder() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("segmentDuration: 2", "segmentDuration: 12"),
            "spec.segmentDuration: Input should be less than or equal to 10",
        ),
        (("segmentDuration: 2", "segmentDuration: 2.0005"), "segmentDuration must be a whole number of milliseconds"),
        (
            ("segmentDuration: 2", "segmentDuration: 2\n  lowLatency: {partDuration: 0.5005}"),
            "lowLatency.partDuration must be a whole number of milliseconds",
        ),
        (("10.0.0.0/8", "10.0.0.0/99"), "spec.ingest.allowedIps.0"),
        (("preset: Default1080p", "preset: Default4k"), "spec.encoding.preset"),
        (("kind: Channel", "kind: Chanel"), "kind must be one of"),
        (("name: news}", "name: News_1}"), "metadata.name"),
        (("segmentDuration: 2", "segmentDuration: 2\n  bogus: 1"), "spec.bogus: Extra inputs are not permitted"),
    ],
)
def test_invalid_channel_names_the_field(change, message):
    with pytest.raises(ManifestError) as raised:
        load_text(CHANNEL.replace(*change), "channel.yaml")
    assert message in str(raised.value)
    assert str(raised.value).startswith("channel.yaml, document 1")


SECRET = "apiVersion: v1\nkind: Secret\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: [news]\n",
            "metadata: Input should be a valid dictionary",
        ),
        ("apiVersion: kubecast.io/v1alpha1\nkind: [Channel]\n", "kind must be one of"),
        (SECRET + "metadata: 5\n", "Secret metadata must be a mapping"),
        (SECRET + "metadata: {name: [key]}\n", "Secret without metadata.name"),
        (SECRET + "metadata: {name: key}\ndata: [1]\n", "Secret data must be a mapping"),
        (SECRET + "metadata: {name: key}\nstringData: x\n", "Secret stringData must be a mapping"),
        (SECRET + "metadata: {name: key}\ndata: {key: 1}\n", "Secret data.key is not valid base64 text"),
    ],
)
def test_documents_of_the_wrong_shape_are_a_manifest_error(text, message):
    """Found by bench/fuzz.py: these raised AttributeError / TypeError, a traceback instead of a message."""
    with pytest.raises(ManifestError, match=message):
        load_text(text, "fuzz.yaml")


def test_custom_ladder_must_descend():
    text = CHANNEL.replace(
        "encoding: {preset: Default1080p}",
        "encoding:\n    preset: Custom\n    renditions:\n"
        "      - {name: low, width: 640, height: 360, bitrate: 800000}\n"
        "      - {name: high, width: 1280, height: 720, bitrate: 3000000}",
    )
    with pytest.raises(ManifestError, match="strictly descending bitrate"):
        load_text(text)


def test_custom_ladder_needs_renditions_and_only_custom_has_them():
    with pytest.raises(ManifestError, match="preset Custom needs"):
        load_text(CHANNEL.replace("preset: Default1080p", "preset: Custom"))
    text = CHANNEL.replace(
        "encoding: {preset: Default1080p}",
        "encoding:\n    preset: Default720p\n    renditions: [{name: a, width: 640, height: 360, bitrate: 800000}]",
    )
    with pytest.raises(ManifestError, match="only read with preset Custom"):
        load_text(text)


def test_secret_documents_give_stream_keys():
    encoded = base64.b64encode(b"s3cret").decode()
    manifests = load_text(
        CHANNEL + f"---\napiVersion: v1\nkind: Secret\nmetadata: {{name: news-key}}\ndata: {{streamKey: {encoded}}}\n"
    )
    ref = manifests.channels["news"].spec.ingest.stream_key_secret_ref
    assert manifests.secret_value(ref.name, ref.key) == "s3cret"
    with pytest.raises(ManifestError, match="Secret 'other'"):
        manifests.secret_value("other", "streamKey")


def test_program_window_and_channel_reference():
    program = (
        "---\napiVersion: kubecast.io/v1alpha1\nkind: Program\nmetadata: {name: match}\n"
        "spec: {channelName: news, archiveWindow: PT1H30M}\n"
    )
    manifests = load_text(CHANNEL + program)
    assert manifests.programs["match"].spec.archive_window_seconds == 5400
    with pytest.raises(ManifestError, match="names no Channel"):
        load_text(CHANNEL + program.replace("channelName: news", "channelName: other"))
    with pytest.raises(ManifestError, match="ISO-8601"):
        load_text(CHANNEL + program.replace("PT1H30M", "1 hour"))


@pytest.mark.parametrize(("text", "seconds"), [("PT2S", 2), ("PT1H", 3600), ("P1DT30M", 88200), ("PT0.5S", 0.5)])
def test_iso_durations(text, seconds):
    assert parse_iso_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["P", "PT", "1H", "P1M", "PT1H2"])
def test_bad_iso_durations(text):
    with pytest.raises(ValueError):
        parse_iso_duration(text)


@pytest.mark.parametrize("text", ["PT" + "9" * 100 + "S", "P" + "9" * 400 + "D", "P999999999DT24H"])
def test_iso_durations_beyond_a_timedelta_are_refused_not_a_crash(text):
    # Found by fuzzing: timedelta's OverflowError passed through pydantic and load_text as a traceback.
    with pytest.raises(ValueError, match="too long"):
        parse_iso_duration(text)
    program = "apiVersion: kubecast.io/v1alpha1\nkind: Program\nmetadata: {name: p}\n"
    with pytest.raises(ManifestError, match="too long"):
        load_text(CHANNEL + "---\n" + program + f"spec: {{channelName: news, archiveWindow: {text}}}\n")
    with pytest.raises(ManifestError, match="too long"):
        load_text(CHANNEL.replace("spec:", f"spec:\n  idleTimeout: {text}", 1))


def test_not_yaml_and_duplicates():
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_text("kind: [", "x.yaml")
    with pytest.raises(ManifestError, match="defined twice"):
        load_text(CHANNEL + "---\n" + CHANNEL)


def test_the_shipped_examples_are_valid():
    from pathlib import Path

    from kubecast.api import load_paths

    root = Path(__file__).parents[2]
    manifests = load_paths([root / "examples" / "channel.yaml", root / "kubecast" / "local" / "demo.yaml"])
    assert set(manifests.channels) == {"my-channel", "demo"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("locator: ../secret", "locator"),
        ("locator: a/b", "locator"),
        ("manifestName: show.m3u8", "manifestName"),
        ("manifestName: '..'", "manifestName"),
        ("locator: live", "path of the streaming endpoint"),
        ("locator: Metrics", "path of the streaming endpoint"),
    ],
)
def test_program_paths_are_names_not_paths(spec, message):
    program = (
        f"---\napiVersion: kubecast.io/v1alpha1\nkind: Program\nmetadata: {{name: match}}\n"
        f"spec: {{channelName: news, {spec}}}\n"
    )
    with pytest.raises(ManifestError, match=message):
        load_text(CHANNEL + program)


def test_a_program_named_like_an_endpoint_path_needs_its_own_locator():
    program = (
        "---\napiVersion: kubecast.io/v1alpha1\nkind: Program\nmetadata: {name: preview}\nspec: {channelName: news}\n"
    )
    with pytest.raises(ManifestError, match="needs spec.locator"):
        load_text(CHANNEL + program)
    assert (
        load_text(CHANNEL + program.replace("{channelName: news}", "{channelName: news, locator: preview-show}"))
        .programs["preview"]
        .spec.locator
        == "preview-show"
    )
