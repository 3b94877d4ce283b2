"""Prometheus metrics of the encoder."""

from prometheus_client import Counter, Gauge

SPEED = Gauge("kubecast_encoder_speed_ratio", "Media seconds encoded per wall-clock second over the last segment")
FRAMES = Counter("kubecast_encoder_frames_total", "Frames encoded", ["rendition"])
FRAMES_DUPLICATED = Counter(
    "kubecast_encoder_frames_duplicated_total",
    "Constant-frame-rate slots no contribution picture reached, filled by repeating the previous one",
)
FRAMES_DROPPED = Counter(
    "kubecast_encoder_frames_dropped_total",
    "Contribution pictures left out because another one already took their constant-frame-rate slot",
)
SEGMENTS = Counter("kubecast_encoder_segments_total", "Segments stored", ["rendition"])
PARTS = Counter("kubecast_encoder_parts_total", "Low-latency parts stored", ["rendition"])
STORE_WRITES = Counter(
    "kubecast_encoder_store_writes_total",
    "Objects written to storage (PUT requests on an object store), by kind: segment, part, parts_index, progress, "
    "init, thumbnail",
    ["kind"],
)
DECODE_ERRORS = Counter("kubecast_encoder_decode_errors_total", "Contribution packets the decoder refused")
AUDIO_TRACKS = Counter(
    "kubecast_encoder_audio_tracks_total",
    "Live-encoded audio tracks by what became of the contribution's AAC: copied, reencoded, or copy_ended"
    " (re-encoded from the middle of a connection on)",
    ["handling"],
)
INGEST_BITRATE = Gauge("kubecast_encoder_ingest_bitrate_bits_per_second", "Contribution bitrate over the last seconds")
CONTRIBUTIONS = Counter("kubecast_encoder_contributions_total", "Contribution connections", ["outcome"])
STORE_ERRORS = Counter(
    "kubecast_encoder_store_errors_total",
    "Writes to object storage that failed and were retried; reason: full (no space left) or unavailable",
    ["reason"],
)
UPLOAD_BACKLOG = Gauge(
    "kubecast_encoder_upload_backlog_segments", "Segments encoded and waiting to be stored (storage slow or away)"
)
SEGMENTS_DROPPED = Counter(
    "kubecast_encoder_segments_dropped_total",
    "Segments never stored: the upload backlog was full while storage was away, and they were the oldest",
    ["rendition"],
)
CAPTION_ERRORS = Counter(
    "kubecast_encoder_caption_errors_total",
    "Closed-caption data dropped as malformed (truncated, malformed SEI) or beyond what the pictures carry (overflow)",
    ["reason"],
)
CUES = Counter("kubecast_encoder_cues_total", "Ad markers (SCTE-35 splices) placed on the channel timeline")
METADATA = Counter("kubecast_encoder_metadata_total", "Items of ID3 timed metadata placed on the channel timeline")
MANUAL_CUES = Counter(
    "kubecast_encoder_manual_cues_total",
    "Manual cues read from the control record (placed; late: after their boundary, on the next picture; "
    "old: a boundary long gone, skipped)",
    ["outcome"],
)
MANUAL_SLATES = Counter(
    "kubecast_encoder_manual_slate_switches_total",
    "Manual slate switches (on: the card and silence from a boundary; off: the contribution again)",
    ["state"],
)
