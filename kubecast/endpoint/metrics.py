"""Prometheus metrics of the streaming endpoint."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("kubecast_endpoint_requests_total", "HTTP requests", ["route", "status"])
BYTES = Counter("kubecast_endpoint_bytes_total", "Body bytes sent", ["route"])
RENDER_SECONDS = Histogram(
    "kubecast_endpoint_manifest_render_seconds",
    "Time to render a manifest",
    ["kind"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1),
)
CACHE = Counter("kubecast_endpoint_manifest_cache_total", "Rendered-manifest cache lookups", ["result"])
OBJECT_CACHE = Counter(
    "kubecast_endpoint_object_cache_total",
    "Segment cache lookups: hit, miss (one storage read or remux), collapsed (waited on another request's read)",
    ["result"],
)
STALE_READS = Counter(
    "kubecast_endpoint_stale_timeline_reads_total",
    "Timeline reads that failed or took too long, answered with the last copy read (storage slow or away)",
)
OBJECT_CACHE_BYTES = Gauge("kubecast_endpoint_object_cache_bytes", "Bytes of segments held in memory")
KEY_REQUESTS = Counter(
    "kubecast_endpoint_key_requests_total", "Key-delivery requests: served, or the reason of a refusal", ["outcome"]
)
DENIED = Counter(
    "kubecast_endpoint_denied_total",
    "Requests refused by the access policy, by reason "
    "(missing, malformed, unknown_key, bad_signature, expired, out_of_scope, ip_not_allowed, "
    "preview_ip_not_allowed, origin_auth, token_unexpected, bad_path)",
    ["reason"],
)
TIMELINE_MERGES = Counter(
    "kubecast_endpoint_timeline_merges_total",
    "Merges of the encoders' progress made by the endpoint because a channel's stored timeline was stale",
)
BLOCKING_RELOADS = Counter(
    "kubecast_endpoint_blocking_reloads_total",
    "Low-latency HLS playlist requests with _HLS_msn: answered, refused (too far beyond the edge), timed_out (503)",
    ["outcome"],
)
BLOCKED_SECONDS = Histogram(
    "kubecast_endpoint_blocking_reload_seconds",
    "How long an answered blocking playlist reload was held",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 6.0),
)
PRELOAD_SECONDS = Histogram(
    "kubecast_endpoint_preload_wait_seconds",
    "How long a request for a hinted part not yet stored was held before the part was served",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 6.0),
)
INDEX_READS = Counter(
    "kubecast_endpoint_index_reads_total",
    "Storage reads of index objects (GET requests on an object store), by kind: timeline, progress, parts "
    "(an encoder's parts.json), program, locator",
    ["kind"],
)
