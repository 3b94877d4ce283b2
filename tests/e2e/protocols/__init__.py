"""Every contribution protocol end to end: Debian's ffmpeg publishes over UDP, RTP, SRT,
Smooth Streaming and CMAF push (as ``-f dash`` and as ``-f hls`` send it), RTMPS and Smooth over HTTPS (with a
certificate made in the test and checked by ffmpeg) into ``kubecast up``; the output is checked as the skeleton's
(renditions, continuous timestamps, decodable, playing in Chromium with hls.js); a
3-rendition contribution over RTMP and over Smooth passes through bit for bit.  Live-encoded
channels fed over RTMP (from a jittered source), Smooth, CMAF, SRT, UDP and by GStreamer read
in ffmpeg without a timestamp complaint, at a constant frame rate.  A playout stream with SCTE-35
markers (sections and TS packets by threefive) puts its splice in hls.js and in the MPD, and its
ID3 timed metadata (ffmpeg's tags on libavformat's timed_id3 stream) reaches hls.js from the TS
and the fMP4 (emsg) segments and Shaka from the DASH ones at its media time; RTMP onTextData
reaches the TS segments.  A Smooth sparse SCTE-35 track pushed beside a Smooth push puts its
splice in hls.js, the MPD and the Smooth manifest; GStreamer's 608 captions reach ffmpeg and
hls.js over RTMP and over SRT.  FFmpeg 8's FLV muxer (PyAV's, ``flvplay.py``) publishes two AAC
tracks over RTMP, the second as Enhanced RTMP multitrack audio, and the channel plays the first.

One ``kubecast up`` with every publisher (``conftest.py``, package-scoped) serves every module here.
The first module by name, ``test_encoded_inputs.py``, reads the publishers while they are live (it
holds the live-encoded ones until its reads are done)."""
