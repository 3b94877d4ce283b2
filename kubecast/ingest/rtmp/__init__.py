"""RTMP ingest: handshake, chunk stream, AMF0 commands, the publishing session and its server."""
