"""Image inputs: collecting paths, reading them ahead in a thread pool, resizing, drawing.

Decoding a JPEG takes milliseconds; the CLIs read (and resize) images in background threads
(OpenCV releases the GIL while decoding) a bounded number of images ahead of the request
loop, so the server never waits on the disk or the decoder.
"""

from __future__ import annotations

import glob
import os
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tfsuite.errors import UsageError

__all__ = [
    "IMAGE_SUFFIXES",
    "LIST_SUFFIXES",
    "ImageReader",
    "LoadedImage",
    "Resize",
    "collect_images",
    "draw_boxes",
    "parse_resize",
]

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
#: A file with one image path per line (seed 001's ``v1-validate_frames.lst``).
LIST_SUFFIXES = frozenset({".lst", ".list", ".txt"})

Resize = tuple[int, int] | None
"""(width, height) to resize to, or None to keep the original size."""


def parse_resize(text: str) -> Resize:
    """``WxH`` -> (W, H); ``keep`` -> None."""
    text = text.strip().lower()
    if text in ("keep", "none", "original"):
        return None
    parts = text.split("x")
    if len(parts) == 2 and all(p.isdigit() and int(p) > 0 for p in parts):
        return int(parts[0]), int(parts[1])
    raise UsageError(f"--resize takes WxH (e.g. 300x300) or 'keep', not {text!r}")


def _read_list(path: Path) -> list[Path]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            out.append(p if p.is_absolute() else path.parent / p)
    return out


def collect_images(specs: Sequence[str]) -> list[Path]:
    """Files, directories (their images, recursively, sorted), globs and list files, in order."""
    found: list[Path] = []
    missing: list[str] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            inside = (p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            found.extend(sorted(p for p in inside if p.is_file()))
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            found.extend(_read_list(path))
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(spec):
            matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
            if not matches:
                missing.append(spec)
            found.extend(Path(m) for m in matches if Path(m).is_file())
        else:
            missing.append(spec)
    if missing:
        raise UsageError(f"no such image, directory, glob match or list file: {', '.join(missing)}")
    if not found:
        looked = ", ".join(sorted(IMAGE_SUFFIXES))
        raise UsageError(f"no images found in {', '.join(specs)} (looked for {looked})")
    return found


@dataclass
class LoadedImage:
    """One input image, decoded (or not: ``error`` says why)."""

    index: int
    path: Path
    pixels: np.ndarray | None
    """RGB uint8 [H, W, 3] at the requested size (None if the image could not be read)."""
    original_size: tuple[int, int] = (0, 0)
    """(width, height) of the file's image; boxes are reported in these pixels."""
    original: np.ndarray | None = None
    """The original BGR image, kept only when it is going to be drawn on."""
    error: str | None = None


# OpenCV >= 4.10 decodes to RGB directly.
_RGB_DECODE: int | None = getattr(cv2, "IMREAD_COLOR_RGB", None)


def _load(index: int, path: Path, resize: Resize, keep_original: bool) -> LoadedImage:
    # imdecode(fromfile) instead of imread: it reports no error text but handles any path.
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        return LoadedImage(index, path, None, error=exc.strerror or str(exc))
    if _RGB_DECODE is not None and not keep_original:
        # Decode straight to RGB: one pass over the pixels fewer than BGR + cvtColor.
        rgb = cv2.imdecode(data, _RGB_DECODE) if data.size else None
        bgr = None
        if rgb is None:
            return LoadedImage(index, path, None, error="not a readable image")
    else:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            return LoadedImage(index, path, None, error="not a readable image")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    if resize is not None and (w, h) != resize:
        rgb = cv2.resize(rgb, resize, interpolation=cv2.INTER_LINEAR)
    return LoadedImage(index, path, rgb, (w, h), bgr if keep_original else None)


class _OpenCVThreads:
    """OpenCV's thread count is process-wide: set while readers are open, restored after.

    The readers' pool is the parallelism: OpenCV's own worker threads inside each resize
    or color conversion would only compete with the pool (and a local server) for cores.
    Other code in the process (e.g. a served comparison) gets its setting back once the
    last reader closes. Readers that ask for different counts at once: the first wins.
    """

    _lock = threading.Lock()
    _open = 0
    _saved = 0

    @classmethod
    def acquire(cls, threads: int) -> None:
        with cls._lock:
            if cls._open == 0:
                cls._saved = cv2.getNumThreads()
                cv2.setNumThreads(threads)
            cls._open += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._open -= 1
            if cls._open == 0:
                cv2.setNumThreads(cls._saved)


class ImageReader:
    """Reads images in a thread pool, ``prefetch`` ahead of the consumer, in input order.

    ``opencv_threads``: OpenCV's (process-wide) thread count while the reader is open,
    restored by :meth:`close`; ``None`` leaves OpenCV's setting alone.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        resize: Resize,
        *,
        keep_original: bool = False,
        workers: int | None = None,
        prefetch: int = 32,
        opencv_threads: int | None = 1,
    ) -> None:
        self.paths = list(paths)
        self.resize = resize
        self.keep_original = keep_original
        self.prefetch = max(1, prefetch)
        self._opencv_threads = opencv_threads
        if opencv_threads is not None:
            _OpenCVThreads.acquire(opencv_threads)
        self._pool = ThreadPoolExecutor(
            max_workers=workers or min(4, (os.cpu_count() or 2)), thread_name_prefix="tfsuite-read"
        )
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[LoadedImage]:
        pending: deque[Future[LoadedImage]] = deque()
        it = iter(enumerate(self.paths))

        def top_up() -> None:
            while len(pending) < self.prefetch and not self._closed.is_set():
                try:
                    i, p = next(it)
                except StopIteration:
                    return
                pending.append(self._pool.submit(_load, i, p, self.resize, self.keep_original))

        top_up()
        while pending:
            item = pending.popleft().result()
            top_up()
            yield item

    def close(self) -> None:
        """Stop reading ahead (pending reads are cancelled); idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._opencv_threads is not None:
            _OpenCVThreads.release()

    def __enter__(self) -> ImageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _color(class_id: int) -> tuple[int, int, int]:
    # A fixed, well-spread color per class id (golden-ratio hue steps).
    hue = int((class_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].tolist()
    return int(b), int(g), int(r)


def draw_boxes(
    bgr: np.ndarray, boxes: Sequence[tuple[tuple[float, float, float, float], str, int]]
) -> np.ndarray:
    """Draw ``(x1, y1, x2, y2), caption, class_id`` boxes on a copy of a BGR image."""
    out = bgr.copy()
    thickness = max(1, round(min(out.shape[:2]) / 300))
    for (x1, y1, x2, y2), caption, class_id in boxes:
        color = _color(class_id)
        p1, p2 = (round(x1), round(y1)), (round(x2), round(y2))
        cv2.rectangle(out, p1, p2, color, thickness)
        (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        top = max(p1[1], th + base)
        cv2.rectangle(out, (p1[0], top - th - base), (p1[0] + tw, top), color, cv2.FILLED)
        origin = (p1[0], top - base)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(out, caption, origin, font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return out
