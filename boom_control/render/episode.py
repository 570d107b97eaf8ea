"""Record one controlled episode: a frame after the reset and after every step, streamed to
a video, and evenly spaced frames kept for an image strip."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from boom_control.errors import RenderError
from boom_control.render.output import check_video_path, open_video, write_strip
from boom_control.render.renderer import check_size, env_renderer


@dataclass(frozen=True)
class RecordConfig:
    """What to record of an episode and where to write it."""

    video: Path | None = None
    """MP4 or GIF path; None for no video."""
    strip: Path | None = None
    """PNG path of the image strip; None for no strip."""
    width: int = 480
    """Frame width in pixels."""
    height: int = 360
    """Frame height in pixels."""
    camera: str | None = None
    """A model camera by name; None for the tracking view."""
    strip_frames: int = 8
    """Frames in the strip, evenly spaced over the episode, first and last included."""
    max_steps: int | None = None
    """Stop the episode after this many steps (None: the task's episode length)."""
    use_planner: bool = True
    """Act with the planner; False: the policy alone."""

    def __post_init__(self) -> None:
        if self.video is None and self.strip is None:
            raise RenderError("nothing to record: give a video path, a strip path or both")
        if self.video is not None:
            check_video_path(self.video)
        check_size(self.width, self.height)
        if self.strip_frames < 1:
            raise RenderError(f"strip_frames must be >= 1, got {self.strip_frames}")
        if self.max_steps is not None and self.max_steps < 1:
            raise RenderError(f"max_steps must be >= 1, got {self.max_steps}")


@dataclass(frozen=True)
class Recording:
    """Result of :func:`record_episode`."""

    episode_return: float
    length: int
    """Steps taken (the episode may end earlier than max_steps by termination)."""
    frames: int
    """Frames rendered: ``length + 1``."""
    video: Path | None
    """The video written (a ``.gif`` when MP4 support is not installed)."""
    strip: Path | None


class EvenSample:
    """Keeps evenly spaced items of a stream of unknown length in bounded memory.

    Items whose index is a multiple of the stride are kept; whenever ``4 * count`` are
    held, the stride doubles and every other one is dropped. The last item is always
    kept, so :meth:`pick` can span the whole stream.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.stride = 1
        self.items: list[tuple[int, Any]] = []
        self.last: tuple[int, Any] | None = None

    def add(self, index: int, item: Any) -> None:
        self.last = (index, item)
        if index % self.stride:
            return
        self.items.append((index, item))
        if len(self.items) >= 4 * self.count:
            self.stride *= 2
            self.items = [(i, x) for i, x in self.items if i % self.stride == 0]

    def pick(self) -> list[tuple[int, Any]]:
        """About ``count`` ``(index, item)`` pairs spread over the stream, first and last
        included (each the kept item nearest an even spacing of the indices)."""
        kept = list(self.items)
        if self.last is not None and (not kept or kept[-1][0] != self.last[0]):
            kept.append(self.last)
        if not kept:
            return []
        indices = np.array([i for i, _ in kept])
        span = np.linspace(indices[0], indices[-1], min(self.count, len(kept)))
        chosen = sorted({int(np.abs(indices - t).argmin()) for t in span})
        return [kept[c] for c in chosen]


def record_episode(
    actor: Any, env: Any, seed: int, cfg: RecordConfig, progress: bool = True
) -> Recording:
    """Run one deterministic episode of ``actor`` (an evaluation
    :class:`~boom_control.train.evaluate.Actor`) on ``env`` from reset seed ``seed``,
    rendering every step, and write the video and the strip of ``cfg``.

    The video plays in real time: ``env.spec.control_rate`` frames per second.
    """
    from tqdm import tqdm

    from boom_control.train.evaluate import run_episode

    limit = env.spec.episode_length
    if cfg.max_steps is not None:
        limit = min(limit, cfg.max_steps)
    renderer = env_renderer(env, cfg.width, cfg.height, cfg.camera)
    sink = open_video(cfg.video, env.spec.control_rate) if cfg.video is not None else None
    keep = EvenSample(cfg.strip_frames)
    bar = tqdm(total=limit, desc="rendering", unit="step", disable=not progress, leave=False)

    def on_step(t: int) -> None:
        frame = renderer.render()
        if sink is not None:
            sink.append(frame)
        keep.add(t, frame)
        if t:
            bar.update()

    try:
        total, length = run_episode(actor, env, seed, cfg.use_planner, cfg.max_steps, on_step)
    finally:
        bar.close()
        renderer.close()
        video = sink.close() if sink is not None else None  # also the frames of a failure
    strip = None
    if cfg.strip is not None:
        picked = keep.pick()
        strip = write_strip(
            cfg.strip, [frame for _, frame in picked], [f"step {t}" for t, _ in picked]
        )
    return Recording(float(total), length, length + 1, video, strip)
