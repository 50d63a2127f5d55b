"""Response and request headers: case-insensitive, multi-valued, order kept.

``urllib`` hands out an ``http.client.HTTPMessage`` (an ``email.message``),
which is slow to build for every response. :class:`Headers` offers the part of
its interface that HTTP code uses — ``h["Content-Type"]``, ``get``,
``get_all``, ``items``, ``keys``, ``in`` — over a plain list of pairs, with a
lower-cased index built on first lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import overload

__all__ = ["Headers"]


class Headers:
    """An ordered list of ``(name, value)`` string pairs with case-insensitive lookup."""

    __slots__ = ("_pairs", "_index")

    def __init__(self, pairs: Iterable[tuple[str, str]] | Mapping[str, str] | None = None) -> None:
        if pairs is None:
            self._pairs: list[tuple[str, str]] = []
        elif isinstance(pairs, Mapping):
            self._pairs = [(str(k), str(v)) for k, v in pairs.items()]
        elif isinstance(pairs, Headers):
            self._pairs = list(pairs._pairs)
        else:
            self._pairs = [(str(k), str(v)) for k, v in pairs]
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def _adopt(cls, pairs: list[tuple[str, str]]) -> Headers:
        """Headers over ``pairs`` as they are: a list of ``str`` pairs that nothing else will change."""
        headers = cls.__new__(cls)
        headers._pairs = pairs
        headers._index = None
        return headers

    def _lookup(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._pairs:
                index.setdefault(name.lower(), []).append(value)
            self._index = index
        return index

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (any case), or ``default``."""
        if not self._pairs:  # most requests add no header: no index to build nor name to lower
            return default
        values = self._lookup().get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str, default: list[str] | None = None) -> list[str] | None:
        """Every value of ``name`` in order (like ``email.message.Message.get_all``)."""
        values = self._lookup().get(name.lower())
        return list(values) if values else default

    def get_content_type(self) -> str:
        """The media type of ``Content-Type``, lower case; ``"text/plain"`` without one (as ``email.message``)."""
        value = self.get("Content-Type")
        media_type = value.partition(";")[0].strip().lower() if value else ""
        return media_type if media_type.count("/") == 1 else "text/plain"

    def get_content_charset(self, failobj: str | None = None) -> str | None:
        """The ``charset`` parameter of ``Content-Type``, lower case, or ``failobj`` (as ``email.message``)."""
        value = self.get("Content-Type") or ""
        for param in value.split(";")[1:]:
            name, _, found = param.partition("=")
            if name.strip().lower() == "charset":
                return found.strip().strip('"').lower() or failobj
        return failobj

    def __getitem__(self, name: str) -> str | None:
        # Like email.message.Message: a missing header reads as None.
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        if not self._pairs or not isinstance(name, str):
            return False
        index = self._index  # built once: asked for every request and response, so no call to _lookup after
        return name.lower() in (index if index is not None else self._lookup())

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def keys(self) -> list[str]:
        """Header names in order, as received (repeated names repeat)."""
        return [name for name, _ in self._pairs]

    def values(self) -> list[str]:
        """Header values in order."""
        return [value for _, value in self._pairs]

    def items(self) -> list[tuple[str, str]]:
        """``(name, value)`` pairs in order, as received."""
        return list(self._pairs)

    def add(self, name: str, value: str) -> None:
        """Append one more ``name: value``."""
        self._pairs.append((name, value))
        self._index = None

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` (any case) with one ``name: value``."""
        self.remove(name)
        self.add(name, value)

    def remove(self, name: str) -> None:
        """Drop every ``name`` (any case)."""
        lowered = name.lower()
        self._pairs = [(k, v) for k, v in self._pairs if k.lower() != lowered]
        self._index = None

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers._adopt(list(self._pairs))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._pairs == other._pairs
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"

    def as_string(self) -> str:
        """The block as text, one ``Name: value`` per line (what ``str(HTTPMessage)`` gives)."""
        return "".join(f"{name}: {value}\r\n" for name, value in self._pairs)
