"""The REST predict decoder for dense numeric tensors: TF Serving's row and columnar JSON
written straight into a preallocated numpy array.

A 224x224x3 image as JSON is ~3 MB of numbers. The generic path (``rest_json``) builds a
Python object per number and nested lists per row, then lets numpy walk them: ~13x the
body in memory and most of a REST request's time. This decoder handles the bodies that
carry the bulk of the numbers, with the same results:

- ``{"instances": <array>}`` / ``{"inputs": <array>}`` (the signature's only input) and
  ``{"inputs": {"name": <array>, ...}}``, with an optional ``"signature_name"``;
- ``<array>`` a rectangular nest of JSON numbers (TF Serving's rapidjson also takes
  ``NaN``, ``Inf`` and ``Infinity``, signed or not).

How: a small scanner reads the top-level object (a handful of tokens) and finds where each
array starts and ends. Per array, in chunks of ``CHUNK_BYTES``: the bracket skeleton
(``bytes.translate`` drops the numbers) gives the shape, checked against the canonical
skeleton of that shape so ragged lists never pass; then the output array is allocated and
each chunk, brackets blanked out, is parsed by simdjson as one flat array whose numbers
come out as a C buffer (``as_buffer``) copied into its slice of the output. simdjson
validates JSON's number syntax and refuses ``true`` among numbers, as rapidjson does.

Memory per request: the body, the output tensors, and one chunk's working set (its text,
simdjson's tape and a float64 buffer: about 4 x ``CHUNK_BYTES``), whatever the body's size.

Anything else (strings, ``{"b64": ...}``, objects per instance, escapes, duplicate keys,
malformed JSON, empty lists, booleans among numbers, integer inputs given with a fraction
or exponent) is declined with ``None`` and goes through the generic path, which gives TF
Serving's error messages. Most bodies are declined before any number is parsed; one that
fails in a later chunk is declined there, and the generic path then parses it all again.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import simdjson

__all__ = ["CHUNK_BYTES", "DenseArray", "DensePredictBody", "scan_predict_body"]

#: Bytes of number text handled per step (bounds a request's transient memory).
CHUNK_BYTES = 64 * 1024

_WS = b" \t\n\r"
_NUMBER_CHARS = b"0123456789.eE+-"
_SPECIAL_LETTERS = b"NaIinfty"  # NaN, Inf, Infinity (rapidjson's kParseNanAndInfFlag)
_BRACKETS_TO_SPACES = bytes.maketrans(b"[]", b"  ")
_QUOTE, _COLON, _COMMA = 0x22, 0x3A, 0x2C
_LBRACKET, _RBRACKET, _LBRACE, _RBRACE = 0x5B, 0x5D, 0x7B, 0x7D
# rapidjson's forms Python's json lacks: "-NaN" (a NaN), "Inf" (= Infinity).
_NEG_NAN = re.compile(rb"-NaN")
_SHORT_INF = re.compile(rb"Inf(?!inity)")
#: Canonical skeletons up to this size are cached by shape (repeated shapes are the norm).
_CACHED_SKELETON_BYTES = 1 << 20


#: simdjson's ``as_buffer`` element type per numpy kind (parsed as 64-bit, then cast).
_BUFFER_TYPES = {"f": ("d", np.float64), "i": ("i", np.int64), "u": ("u", np.uint64)}


@dataclass(frozen=True, slots=True)
class DenseArray:
    """One JSON array in the body: ``body[start:end]`` (not yet checked to be dense)."""

    start: int
    end: int

    def _chunks(self, body: bytes) -> Iterator[tuple[int, int]]:
        """``(pos, cut)`` spans inside the outer brackets, each ending before a comma."""
        pos, stop = self.start + 1, self.end - 1
        while pos < stop:
            cut = body.find(b",", min(pos + CHUNK_BYTES, stop), stop)
            if cut < 0:
                cut = stop
            yield pos, cut
            pos = cut + 1

    def _layout(self, body: bytes) -> tuple[tuple[int, ...], bool] | None:
        """(shape, NaN/Inf present) from the bracket skeleton; None unless rectangular and
        made of numbers only."""
        parts = [b"["]
        for pos, cut in self._chunks(body):
            parts.append(body[pos:cut].translate(None, _NUMBER_CHARS + _WS))
            parts.append(b",")
        parts[-1] = b"]"
        skeleton = b"".join(parts) if len(parts) > 1 else b"[]"
        letters = skeleton.translate(None, b"[],")
        special = bool(letters)
        if special:
            if letters.translate(None, _SPECIAL_LETTERS):
                return None  # true/false/null, strings, anything not a number
            skeleton = skeleton.translate(None, _SPECIAL_LETTERS)
        shape = _shape(skeleton)
        return None if shape is None else (shape, special)

    def _fractional(self, body: bytes) -> bool:
        """A ``.`` or an exponent somewhere: not a list of JSON integers."""
        return any(0 <= body.find(c, self.start, self.end) for c in (b".", b"e", b"E"))

    def decode(self, body: bytes, dtype: np.dtype[Any]) -> np.ndarray | None:
        """The array as ``dtype``; None where the generic path must decide (and explain)."""
        if dtype.kind not in _BUFFER_TYPES:
            return None
        layout = self._layout(body)
        if layout is None:
            return None
        shape, special = layout
        if dtype.kind in "iu" and (special or self._fractional(body)):
            return None  # TF Serving refuses 1.0 for an integer input: let the generic path
        size = math.prod(shape)
        out = np.empty(size, dtype)
        of_type, buffer_dtype = _BUFFER_TYPES[dtype.kind]
        parser = simdjson.Parser()
        filled = 0
        for pos, cut in self._chunks(body):
            text = b"[" + body[pos:cut].translate(_BRACKETS_TO_SPACES) + b"]"
            try:
                if special:
                    values = np.asarray(_special_loads(text), buffer_dtype)
                else:
                    parsed = parser.parse(text)
                    values = np.frombuffer(parsed.as_buffer(of_type=of_type), buffer_dtype)
                    del parsed  # the parser is reused for the next chunk
            except (ValueError, TypeError, OverflowError):  # bad number, bool, range: generic
                return None
            if filled + len(values) > size or (dtype.kind != "f" and not _fits(values, dtype)):
                return None
            with np.errstate(over="ignore"):  # e.g. 1e5 as float16 is inf, as in TF Serving
                out[filled : filled + len(values)] = values
            filled += len(values)
        if filled != size:
            return None  # an empty list somewhere (the skeleton counted it as one number)
        return out.reshape(shape)


def _fits(values: np.ndarray, dtype: np.dtype[Any]) -> bool:
    info = np.iinfo(dtype)
    return not values.size or (values.min() >= info.min and values.max() <= info.max)


def _special_loads(text: bytes) -> list[Any]:
    """A flat chunk with NaN/Inf tokens, read by Python's json (rapidjson's spellings)."""
    values = json.loads(_SHORT_INF.sub(b"Infinity", _NEG_NAN.sub(b"NaN", text)))
    if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
        raise ValueError("not a number")
    return values


@dataclass(frozen=True, slots=True)
class DensePredictBody:
    """A predict body whose inputs are all dense numeric arrays."""

    signature_name: str
    #: True for ``instances`` (row) requests, False for ``inputs`` (columnar) ones.
    row_format: bool
    #: input name -> array; the key None is the signature's only input, unnamed
    arrays: dict[str | None, DenseArray]

    def decode(
        self, body: bytes, dtypes: Mapping[str, np.dtype[Any]]
    ) -> dict[str, np.ndarray] | None:
        """Input tensors by alias for the signature's ``dtypes``; None to use the generic path."""
        out: dict[str, np.ndarray] = {}
        for name, array in self.arrays.items():
            if name is None:
                if len(dtypes) != 1:
                    return None
                ((name, dtype),) = dtypes.items()
            else:
                dtype = dtypes.get(name)
                if dtype is None:
                    return None
            decoded = array.decode(body, dtype)
            if decoded is None:
                return None
            out[name] = decoded
        return out


def scan_predict_body(body: bytes) -> DensePredictBody | None:
    """Read a predict body's top level; None unless every input is a dense numeric array."""
    if b"\\" in body:  # escapes: strings need a real JSON parser
        return None
    try:
        return _Scanner(body).predict_body()
    except _Declined:
        return None


class _Declined(Exception):
    """Not a body this decoder handles (the generic path will)."""


class _Scanner:
    """Just enough of a JSON reader for the top-level object of a predict body."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.pos = 0

    def predict_body(self) -> DensePredictBody:
        body = self.body
        self._expect(_LBRACE)
        signature_name = "serving_default"
        row_format: bool | None = None
        arrays: dict[str | None, DenseArray] = {}
        seen: set[str] = set()
        while True:
            key = self._string()
            if key in seen:
                raise _Declined
            seen.add(key)
            self._expect(_COLON)
            if key == "signature_name":
                signature_name = self._string()
            elif key in ("instances", "inputs") and row_format is None:
                row_format = key == "instances"
                if self._peek() == _LBRACKET:
                    arrays[None] = self._array()
                elif not row_format and self._peek() == _LBRACE:
                    arrays.update(self._named_arrays())
                else:
                    raise _Declined
            else:
                raise _Declined
            if self._next() == _RBRACE:
                break
            self._unread_comma()
        self._skip_ws()
        if self.pos != len(body) or row_format is None:
            raise _Declined
        return DensePredictBody(signature_name, row_format, arrays)

    def _named_arrays(self) -> dict[str | None, DenseArray]:
        self._expect(_LBRACE)
        arrays: dict[str | None, DenseArray] = {}
        while True:
            name = self._string()
            if name in arrays:
                raise _Declined
            self._expect(_COLON)
            if self._peek() != _LBRACKET:
                raise _Declined
            arrays[name] = self._array()
            if self._next() == _RBRACE:
                return arrays
            self._unread_comma()

    # -- tokens -----------------------------------------------------------------------------
    def _skip_ws(self) -> None:
        body, pos = self.body, self.pos
        while pos < len(body) and body[pos] in _WS:
            pos += 1
        self.pos = pos

    def _peek(self) -> int:
        self._skip_ws()
        if self.pos >= len(self.body):
            raise _Declined
        return self.body[self.pos]

    def _next(self) -> int:
        c = self._peek()
        self.pos += 1
        return c

    def _expect(self, c: int) -> None:
        if self._next() != c:
            raise _Declined

    def _unread_comma(self) -> None:
        if self.body[self.pos - 1] != _COMMA:
            raise _Declined

    def _string(self) -> str:
        self._expect(_QUOTE)
        end = self.body.find(b'"', self.pos)  # no escapes in the body: the next quote ends it
        if end < 0:
            raise _Declined
        raw = self.body[self.pos : end]
        self.pos = end + 1
        if any(b < 0x20 for b in raw):  # control characters are invalid JSON
            raise _Declined
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Declined from None

    def _array(self) -> DenseArray:
        """The array starting here: where it ends (its contents are checked when decoded)."""
        body, start = self.body, self.pos
        # No quote or brace can be inside a numeric array: the first one bounds it.
        bound = len(body)
        for c in (b'"', b"}", b"{"):
            found = body.find(c, start, bound)
            if found >= 0:
                bound = found
        end = bound
        while end > start and body[end - 1] in b" \t\n\r,":
            end -= 1
        if end - start < 2 or body[end - 1] != _RBRACKET:
            raise _Declined
        self.pos = end
        return DenseArray(start, end)


def _shape(skeleton: bytes) -> tuple[int, ...] | None:
    """The shape of a rectangular nest from its skeleton (only ``[``, ``]`` and ``,``),
    or None if it is not one (ragged, empty, or not a single array)."""
    ndim = len(skeleton) - len(skeleton.lstrip(b"["))
    close = skeleton.find(b"]")
    if ndim == 0 or close < 0:
        return None
    # The skeleton cannot tell "[]" from "[1]": an empty list is counted as one element,
    # and the decoder's count check (one number short) declines it.
    innermost = skeleton[ndim - 1 : close + 1]
    dims = [innermost.count(b",") + 1]
    length = len(innermost)  # of one element at the level being counted
    for level in range(ndim - 2, -1, -1):
        i, count = level + 1, 0
        while True:
            count += 1
            i += length
            if i >= len(skeleton):
                return None
            if skeleton[i] == _RBRACKET:
                break
            if skeleton[i] != _COMMA:
                return None
            i += 1
        dims.insert(0, count)
        length = 2 + count * length + (count - 1)
    shape = tuple(dims)
    if len(skeleton) != length or _canonical(shape) != skeleton:
        return None
    return shape


def _canonical(shape: tuple[int, ...]) -> bytes:
    elements = math.prod(shape)
    if elements * 2 <= _CACHED_SKELETON_BYTES:
        return _cached_canonical(shape)
    return _build_canonical(shape)


def _build_canonical(shape: tuple[int, ...]) -> bytes:
    out = b"[" + b"," * (shape[-1] - 1) + b"]"
    for dim in reversed(shape[:-1]):
        out = b"[" + b",".join([out] * dim) + b"]"
    return out


_cached_canonical = functools.lru_cache(maxsize=64)(_build_canonical)
