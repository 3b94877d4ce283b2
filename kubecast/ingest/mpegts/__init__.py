"""MPEG-TS contributions: the demuxer, its session, and its carriers (UDP, RTP, SRT)."""
