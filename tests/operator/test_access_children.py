"""What the operator makes of the access-control fields: the preview URL in the Channel's status,
and (with the endpoint's children) the policy, Secrets and ingest Services."""

from datetime import datetime, timezone

from kubecast.api import Channel, StreamingEndpoint
from kubecast.operator.status import aggregate_channel, preview_url

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_the_preview_url_is_on_the_first_streaming_endpoint():
    channel = Channel.model_validate({"metadata": {"name": "news"}})
    endpoints = [StreamingEndpoint.model_validate({"metadata": {"name": name}, "spec": spec})
                 for name, spec in (("zulu", {}), ("alpha", {"hostNames": ["tv.example.com"]}))]
    assert preview_url(channel, endpoints, "media") == "http://tv.example.com/preview/news/"
    assert preview_url(channel, endpoints[:1], "media") == "http://zulu.media.svc/preview/news/"
    assert preview_url(channel, [], "media") is None
    status = aggregate_channel(channel, generation=1, deployments={}, services={}, secret_error=None, previous=None, now=NOW,
                               preview=preview_url(channel, endpoints, "media"))
    assert status["previewUrl"] == "http://tv.example.com/preview/news/"
