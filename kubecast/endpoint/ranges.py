"""HTTP byte ranges (RFC 9110 section 14), single range only: what players and CDNs send."""

from __future__ import annotations

import re

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class UnsatisfiableRange(ValueError):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) to serve, None for the whole object; UnsatisfiableRange for a 416."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or match.group(1) == match.group(2) == "":
        return None  # a malformed or multi-range header is ignored: the whole object is served
    first, last = match.groups()
    # Past 18 digits a number is beyond any object; int() of thousands of digits raises.
    if len(first) > 18:
        raise UnsatisfiableRange(header)
    last = last if len(last) <= 18 else str(size)
    if first == "":
        length = int(last)
        if length == 0:
            raise UnsatisfiableRange(header)
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    if start >= size or end <= start:
        raise UnsatisfiableRange(header)
    return start, end
