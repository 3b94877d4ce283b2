import sys
from pathlib import Path

import pytest

# tests/helpers.py is imported as `helpers` by the test modules
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on a free loopback port: the real S3 wire protocol, no cloud."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_store_url(s3_endpoint, monkeypatch):
    """A fresh bucket; the AWS_* variables obstore (and boto3) read point at the moto server."""
    import uuid

    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"kubecast-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/prefix"
