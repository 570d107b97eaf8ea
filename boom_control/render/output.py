"""Write rendered frames: an MP4 or GIF video, and an image strip with step labels.

MP4 needs the ``render`` extra (``imageio`` and ``imageio-ffmpeg``, which ships its own
ffmpeg); without it the video falls back to a GIF next to the asked path. GIFs and strips
need only Pillow. Frames are ``(H, W, 3)`` uint8 RGB arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from boom_control.errors import RenderError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".gif")
RENDER_EXTRA_HINT = "pip install 'boom-control[render]' (imageio, imageio-ffmpeg)"


class VideoSink(Protocol):
    """Frames in, a video file out."""

    path: Path

    def append(self, frame: np.ndarray) -> None: ...

    def close(self) -> Path: ...


class Mp4Sink:
    """H.264 MP4 through imageio's ffmpeg plugin, streamed frame by frame."""

    def __init__(self, path: Path, fps: float) -> None:
        import imageio.v2 as imageio

        self.path = path
        # macro_block_size=2: yuv420p needs even sides; other sizes are padded up by imageio.
        self._writer = imageio.get_writer(
            path, fps=fps, codec="libx264", quality=7, macro_block_size=2
        )

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame)

    def close(self) -> Path:
        self._writer.close()
        return self.path


class GifSink:
    """Looping GIF through Pillow (frames kept as 256-colour images until :meth:`close`)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self._duration_ms = max(20, round(1000.0 / fps))  # GIF delays are 10 ms units
        self._frames: list = []

    def append(self, frame: np.ndarray) -> None:
        from PIL import Image

        self._frames.append(Image.fromarray(frame).quantize(colors=256))

    def close(self) -> Path:
        """Write the GIF (nothing when no frame came)."""
        if not self._frames:
            return self.path
        first, *rest = self._frames
        first.save(self.path, save_all=True, append_images=rest, duration=self._duration_ms, loop=0)
        self._frames = []
        return self.path


def check_video_path(path: str | Path) -> Path:
    """``path`` as a Path when it names an MP4 or GIF; RenderError otherwise."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise RenderError(f"video {path} must end in {' or '.join(VIDEO_SUFFIXES)}")
    return path


def open_video(path: str | Path, fps: float) -> VideoSink:
    """A sink for ``path`` (``.mp4`` or ``.gif``) at ``fps`` frames per second.

    An ``.mp4`` without imageio / imageio-ffmpeg installed becomes a ``.gif`` beside it,
    with a warning naming what to install.
    """
    path = check_video_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        return GifSink(path, fps)
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        gif = path.with_suffix(".gif")
        log.warning("MP4 needs %s; writing %s instead", RENDER_EXTRA_HINT, gif)
        return GifSink(gif, fps)
    return Mp4Sink(path, fps)


def write_strip(
    path: str | Path, frames: Sequence[np.ndarray], labels: Sequence[str], gap: int = 4
) -> Path:
    """PNG of ``frames`` side by side, ``gap`` white pixels apart, each with its label
    drawn in the top-left corner. Size: ``(H, n * W + (n - 1) * gap)``."""
    from PIL import Image, ImageDraw, ImageFont

    if not frames or len(frames) != len(labels):
        raise RenderError(
            f"a strip needs frames and one label each, got {len(frames)}/{len(labels)}"
        )
    h, w = frames[0].shape[:2]
    n = len(frames)
    strip = Image.new("RGB", (n * w + (n - 1) * gap, h), "white")
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=max(10, h // 18))
    for i, (frame, label) in enumerate(zip(frames, labels)):
        x = i * (w + gap)
        strip.paste(Image.fromarray(frame), (x, 0))
        box = draw.textbbox((x + 4, 4), label, font=font)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill="black")
        draw.text((x + 4, 4), label, fill="white", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    strip.save(path, format="PNG")
    return path
