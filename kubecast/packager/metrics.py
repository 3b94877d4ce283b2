"""Prometheus metrics of the packager."""

from prometheus_client import Counter, Histogram

PUBLISH_LATENCY = Histogram(
    "kubecast_packager_publish_latency_seconds",
    "Wall-clock time from a segment's end to its listing in the timeline",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
)
PUBLISHED = Counter(
    "kubecast_packager_segments_published_total", "Segments listed in the timeline", ["track", "source"]
)
DUPLICATES = Counter(
    "kubecast_packager_duplicate_copies_total", "Copies of an already published segment from another encoder"
)
FAILOVERS = Counter(
    "kubecast_packager_failovers_total", "The channel's newest segments started coming from the other encoder"
)
WRITES = Counter("kubecast_packager_timeline_writes_total", "Timeline index writes")
READ_ERRORS = Counter(
    "kubecast_packager_read_errors_total", "Progress records that could not be read or parsed", ["instance"]
)
