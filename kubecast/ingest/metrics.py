"""Prometheus metrics of the ingest."""

from prometheus_client import Counter, Gauge

BYTES = Counter("kubecast_ingest_bytes_total", "Contribution bytes received", ["channel"])
FRAMES = Counter("kubecast_ingest_frames_total", "Audio and video frames received", ["channel", "kind"])
BITRATE = Gauge("kubecast_ingest_bitrate_bits_per_second", "Contribution bitrate over the last seconds", ["channel"])
PUBLISHERS = Gauge("kubecast_ingest_publishers", "Live publishers", ["channel"])
REJECTED = Counter("kubecast_ingest_rejected_total", "Publishes refused", ["reason"])
PROTOCOL_ERRORS = Counter(
    "kubecast_ingest_protocol_errors_total", "Connections closed for a protocol error", ["reason"]
)
LINK_FAILURES = Counter(
    "kubecast_ingest_encoder_link_failures_total", "Connections to encoders that failed or were dropped", ["channel"]
)
TRANSPORT_ERRORS = Counter(
    "kubecast_ingest_transport_errors_total",
    "Damage in MPEG-TS contributions: lost RTP datagrams, TS sync losses and continuity errors, frames dropped",
    ["channel", "kind"],
)
CUES = Counter("kubecast_ingest_cues_total", "Ad markers (SCTE-35 splices) forwarded to the encoders", ["channel"])
METADATA = Counter(
    "kubecast_ingest_metadata_total", "Items of ID3 timed metadata forwarded to the encoders", ["channel"]
)
METADATA_REJECTED = Counter(
    "kubecast_ingest_metadata_rejected_total",
    "ID3 timed metadata dropped: malformed tags (truncated, size, frame, ...), or timed far from the media",
    ["channel", "reason"],
)
CUES_REJECTED = Counter(
    "kubecast_ingest_cues_rejected_total",
    "Ad markers dropped: malformed SCTE-35 sections (crc, truncated, ...), splices in the past or far ahead",
    ["channel", "reason"],
)
