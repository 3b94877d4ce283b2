"""The key-frame alignment gate of multi-bitrate pass-through (pure)."""

from kubecast.encoder.alignment import AlignmentGate
from kubecast.encoder.segmenter import Segment


def seg(number: int, start: int, duration: int = 180_000, final: bool = False) -> Segment:
    return Segment(number, start, duration, b"", False, final)


def test_aligned_segments_wait_for_the_primary_and_then_pass():
    gate = AlignmentGate(primary="video")
    assert gate.offer("video1", seg(0, 0)) == [], "nothing to compare with yet"
    released = gate.offer("video", seg(0, 0))
    assert [(track, s.number) for track, s in released] == [("video", 0), ("video1", 0)]
    assert gate.offer("video1", seg(1, 180_000)) == [] and gate.offer("video", seg(1, 180_300))[1][0] == "video1"
    assert gate.aligned


def test_a_rendition_cut_elsewhere_is_withheld_for_good():
    gate = AlignmentGate(primary="video")
    gate.offer("video", seg(0, 0))
    assert gate.offer("video2", seg(0, 0, duration=270_000)) == [], "ends 1 s after the primary's segment"
    assert "video2" in gate.misaligned and "ends 1000 ms away" in gate.misaligned["video2"]
    gate.offer("video", seg(1, 180_000))
    assert gate.offer("video2", seg(1, 270_000, 90_000)) == [] and not gate.aligned


def test_a_number_the_primary_skipped_is_misalignment_and_earlier_ones_are_dropped():
    gate = AlignmentGate(primary="video")
    gate.offer("video", seg(5, 900_000))
    assert gate.offer("video1", seg(4, 720_000)) == [] and gate.aligned, "before the primary's first: dropped quietly"
    gate.offer("video", seg(7, 1_260_000))
    assert gate.offer("video1", seg(6, 1_080_000)) == [] and "no key frame at a boundary" in gate.misaligned["video1"]


def test_the_last_segment_may_end_early_and_finish_releases_what_matches():
    gate = AlignmentGate(primary="video")
    gate.offer("video", seg(0, 0, 90_000, final=True))
    assert [s.number for _, s in gate.offer("video1", seg(0, 0, 93_000, final=True))] == [0]
    gate.offer("video1", seg(1, 180_000))
    assert gate.finish() == [] and gate.aligned, "unmatched at the end: dropped, not a misalignment"
