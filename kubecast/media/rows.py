"""A track's segment rows, named one at a time and stored by column.

A Program's recorded window (``archiveWindow``, up to 30 days) lists a row per segment and track,
and the packager and every endpoint replica hold it all.  As a list of named tuples a row cost
232 bytes (a tuple and four ints, each an object of its own); here the rows are columns of
machine integers, 34 bytes a row, with no object per row for the allocator to keep pages for.
Code still sees ``TimelineSegment`` values: indexing and iterating make them as they are read.
Rows are kept in number order (the timeline's own rule), so a segment is found by bisection.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Container, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, NamedTuple, overload

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema


class TimelineSegment(NamedTuple):
    """One listed segment of a track.

    On the wire (``timeline.json``) a JSON array ``[number, start, duration, size, source,
    discontinuity]``, to keep the index small; ``TimelineTrack.segments`` holds these rows
    (``SegmentRows``), so pydantic writes and reads that array through this class (the one
    conversion) and code sees names, never positions."""

    number: int
    start: int  # baseMediaDecodeTime (tfdt), in the track's timescale
    duration: int  # in the track's timescale
    size: int  # bytes
    source: str  # the encoder instance whose copy is listed (its storage folder)
    discontinuity: bool = False  # media before this segment is missing


_new_row = tuple.__new__  # a TimelineSegment from its six values, without the keyword handling of its __new__


class SegmentRows(Sequence[TimelineSegment]):
    """Rows of one track, oldest first: a list of ``TimelineSegment`` in behaviour (indexing,
    slicing, iterating, ``append``, ``copy``, equality with any sequence of rows), stored as
    columns.  Sources are stored as an index into the few names a track ever has (``A``, ``B``)."""

    __slots__ = ("_numbers", "_starts", "_durations", "_sizes", "_sources", "_discontinuities", "_names")

    def __init__(self, rows: Iterable[Sequence[Any]] = ()) -> None:
        self._numbers = array("q")
        self._starts = array("q")
        self._durations = array("q")
        self._sizes = array("q")
        self._sources = array("B")  # index into _names
        self._discontinuities = array("B")
        self._names: list[str] = []
        self.extend(rows)

    def append(self, row: Sequence[Any]) -> None:
        number, start, duration, size, source, *rest = row
        names = self._names
        if source not in names:
            if len(names) > 255:
                raise ValueError("more than 256 sources in one track")
            names.append(source)
        self._numbers.append(number)
        self._starts.append(start)
        self._durations.append(duration)
        self._sizes.append(size)
        self._sources.append(names.index(source))
        self._discontinuities.append(1 if rest and rest[0] else 0)

    def extend(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            self.append(row)

    def copy(self) -> SegmentRows:
        return self[:]

    def __copy__(self) -> SegmentRows:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, object]) -> SegmentRows:
        return self.copy()  # its values are immutable: a copy of the columns is a deep copy

    def __len__(self) -> int:
        return len(self._numbers)

    def _row(self, index: int) -> TimelineSegment:
        return _new_row(
            TimelineSegment,
            (
                self._numbers[index],
                self._starts[index],
                self._durations[index],
                self._sizes[index],
                self._names[self._sources[index]],
                bool(self._discontinuities[index]),
            ),
        )

    @overload
    def __getitem__(self, index: int) -> TimelineSegment: ...

    @overload
    def __getitem__(self, index: slice) -> SegmentRows: ...

    def __getitem__(self, index: int | slice) -> TimelineSegment | SegmentRows:
        if isinstance(index, slice):
            part = SegmentRows()
            part._numbers = self._numbers[index]
            part._starts = self._starts[index]
            part._durations = self._durations[index]
            part._sizes = self._sizes[index]
            part._sources = self._sources[index]
            part._discontinuities = self._discontinuities[index]
            part._names = list(self._names)
            return part
        return self._row(index)

    def __iter__(self) -> Iterator[TimelineSegment]:
        # All in C (no Python frame per row): rendering a window of days iterates every row.
        columns = zip(
            self._numbers,
            self._starts,
            self._durations,
            self._sizes,
            map(self._names.__getitem__, self._sources),
            map(bool, self._discontinuities),
        )
        return map(partial(_new_row, TimelineSegment), columns)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == tuple(b) for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    def __repr__(self) -> str:
        return f"SegmentRows({list(self)!r})"

    def position(self, number: int) -> int | None:
        """Index of the row of segment ``number``, if listed."""
        index = bisect_left(self._numbers, number)
        return index if index < len(self._numbers) and self._numbers[index] == number else None

    def position_at(self, start: int) -> int | None:
        """Index of the row that starts at ``start`` (in the track's timescale), if listed."""
        index = bisect_left(self._starts, start)
        return index if index < len(self._starts) and self._starts[index] == start else None

    def after(self, number: int) -> SegmentRows:
        """The rows of the segments after ``number``."""
        return self[bisect_right(self._numbers, number) :]

    def having(self, numbers: Container[int]) -> SegmentRows:
        """The rows whose numbers are in ``numbers``, as rows of their own (no object per row kept)."""
        return SegmentRows(row for row in self if row.number in numbers)

    def spans(self) -> Spans:
        """(start, duration) of every row, read from the columns as asked for."""
        return Spans(self._starts, self._durations)

    def numbers(self) -> array[int]:
        """The listed segment numbers (a copy), without making a row of each."""
        return self._numbers[:]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # Read and written as a list of TimelineSegment arrays (the wire form is unchanged);
        # rows already in columns are copied, as pydantic copies a list it is given.
        rows = core_schema.list_schema(handler.generate_schema(TimelineSegment))
        from_rows = core_schema.no_info_after_validator_function(cls, rows)
        return core_schema.json_or_python_schema(
            json_schema=from_rows,
            python_schema=core_schema.union_schema(
                [core_schema.no_info_after_validator_function(cls.copy, core_schema.is_instance_schema(cls)), from_rows]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(list, return_schema=rows),
        )


def common_numbers(rows: Iterable[SegmentRows]) -> set[int]:
    """The segment numbers every one of ``rows`` lists (none when there are no rows): what a
    manifest lists so that all its streams begin and end together."""
    sets = [set(each.numbers()) for each in rows]
    return set.intersection(*sets) if sets else set()


class Spans(Sequence[tuple[int, int]]):
    """(start, duration) of each row of a ``SegmentRows``, made when read: what DASH's
    SegmentTimeline is written from, without a tuple kept for every row of a long window."""

    __slots__ = ("_starts", "_durations")

    def __init__(self, starts: array[int], durations: array[int]) -> None:
        self._starts = starts
        self._durations = durations

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> tuple[int, int]: ...

    @overload
    def __getitem__(self, index: slice) -> Spans: ...

    def __getitem__(self, index: int | slice) -> tuple[int, int] | Spans:
        if isinstance(index, slice):
            return Spans(self._starts[index], self._durations[index])
        return self._starts[index], self._durations[index]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._durations)
