"""A read-only stream that refuses to go past a byte limit: what keeps `bundle unpack` from
inflating a decompression bomb further than the bundle its manifest describes.

tarfile reads and seeks the decompressed stream; every read and forward seek goes through
here, so no member header, pax record or skipped member can make it decompress (or hold in
memory) more than `limit` bytes. The limit starts small (enough for the manifest) and is raised
once the manifest says how large the bundle is.
"""

from __future__ import annotations

import io
from typing import IO


class InflatesTooFar(Exception):
    """The archive's decompressed stream goes past the limit (not an OSError: tarfile must
    not take it for an ordinary end of data)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"inflates past {limit} bytes")
        self.limit = limit


class BoundedReader:
    """`inner` (a seekable binary stream), readable and seekable up to `limit` bytes only."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        self._inner = inner
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        allowed = self.limit - self._inner.tell()
        wanted = allowed + 1 if size is None or size < 0 else min(size, allowed + 1)
        data = self._inner.read(max(wanted, 0))
        if len(data) > allowed:
            raise InflatesTooFar(self.limit)
        return data

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._inner.tell()
        elif whence != io.SEEK_SET:
            raise io.UnsupportedOperation("seek from the end of a compressed stream")
        if offset > self.limit:
            raise InflatesTooFar(self.limit)
        return self._inner.seek(offset)

    def tell(self) -> int:
        return self._inner.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True
