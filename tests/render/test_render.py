"""Offscreen rendering: backend choice, frames of task environments, video and image strip
of a recorded bundle episode (``boom eval --video --strip``)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from boom_control.errors import RenderError
from boom_control.render.gl import choose_backend

W, H = 64, 48


@pytest.fixture(scope="module")
def gl_backend() -> str:
    """A working offscreen backend (egl / osmesa / glfw), or skip the rendering tests."""
    try:
        return choose_backend()
    except RenderError as err:
        pytest.skip(f"no offscreen OpenGL backend works on this machine: {err}")


def _frames(env, backend: str, steps: int) -> list[np.ndarray]:
    from boom_control.render.renderer import FrameRenderer

    env.reset(seed=0)
    rng = np.random.default_rng(0)
    with FrameRenderer(env.render_target(), W, H, backend=backend) as renderer:
        frames = [renderer.render()]
        for _ in range(steps):
            env.step(rng.uniform(-1, 1, env.spec.action_dim))
            frames.append(renderer.render())
    return frames


def test_no_backend_error_says_what_to_install():
    with pytest.raises(RenderError) as err:
        choose_backend({}, probe=lambda backend: (False, f"{backend} missing"))
    msg = str(err.value)
    assert "egl: egl missing" in msg and "osmesa: osmesa missing" in msg
    assert "apt-get install libosmesa6" in msg and "MUJOCO_GL=egl" in msg


def test_backend_order_and_user_choice():
    tried: list[str] = []

    def probe(backend: str) -> tuple[bool, str]:
        tried.append(backend)
        return backend == "osmesa", "no device"

    assert choose_backend({}, probe) == "osmesa" and tried == ["egl", "osmesa"]
    tried.clear()
    assert choose_backend({"DISPLAY": ":0"}, probe) == "osmesa" and tried[0] == "glfw"
    # set by the dmc module on headless machines: not a choice against rendering
    assert choose_backend({"MUJOCO_GL": "disable"}, probe) == "osmesa"
    with pytest.raises(RenderError, match="MUJOCO_GL=egl does not work"):
        choose_backend({"MUJOCO_GL": "egl"}, probe)  # the user's choice is not overridden
    with pytest.raises(RenderError, match="MUJOCO_GL=wgl cannot render"):
        choose_backend({"MUJOCO_GL": "wgl"}, probe)


def test_even_sample_spans_a_stream_of_unknown_length():
    from boom_control.render.episode import EvenSample

    keep = EvenSample(5)
    for t in range(101):
        keep.add(t, t)
    picked = [t for t, _ in keep.pick()]
    assert picked[0] == 0 and picked[-1] == 100 and len(picked) == 5
    assert len(keep.items) < 4 * 5  # bounded memory
    assert max(np.diff(picked)) <= 2 * min(np.diff(picked))


def test_mp4_without_imageio_falls_back_to_gif(tmp_path, monkeypatch):
    from boom_control.render.output import GifSink, open_video

    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import fails
    sink = open_video(tmp_path / "out.mp4", fps=50)
    assert isinstance(sink, GifSink) and sink.path == tmp_path / "out.gif"
    with pytest.raises(RenderError, match=".mp4 or .gif"):
        open_video(tmp_path / "out.avi", fps=50)


def test_remote_env_cannot_be_rendered():
    from boom_control.render.renderer import env_renderer

    env = SimpleNamespace(render_target=lambda: None, spec=SimpleNamespace(task_id="zmq:x"))
    with pytest.raises(RenderError, match="no local MuJoCo simulation"):
        env_renderer(env)


def test_dmc_frames_have_the_size_and_move(gl_backend):
    from boom_control.envs import make_env

    with make_env("dmc:walker-walk", seed=0) as env:
        frames = _frames(env, gl_backend, steps=10)
    first, last = frames[0], frames[-1]
    assert first.shape == (H, W, 3) and first.dtype == np.uint8
    assert first.std() > 5  # not a blank image
    assert np.abs(first.astype(int) - last).mean() > 0.5  # the walker moved


def test_h1_is_followed_by_a_tracking_camera(gl_backend):
    import mujoco

    from boom_control.envs import make_env
    from boom_control.render.camera import choose_camera

    with make_env("h1:stand", seed=0) as env:
        model, data = env.render_target()
        cam = choose_camera(model, data)
        assert cam.type == mujoco.mjtCamera.mjCAMERA_TRACKING
        assert model.body(cam.trackbodyid).name == "pelvis"
        with pytest.raises(RenderError, match="no camera 'nope'"):
            choose_camera(model, data, "nope")
        frames = _frames(env, gl_backend, steps=15)
    assert all(f.shape == (H, W, 3) for f in frames)
    assert frames[0].std() > 5
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 0.5


def _eval(bundle, monkeypatch, backend: str, *args: str):
    from boom_control.cli import cli

    monkeypatch.setenv("MUJOCO_GL", backend)  # restored after the test
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    cmd = ["eval", str(bundle), "--device", "cpu", "--threads", "1"]
    cmd += ["--width", str(W), "--height", str(H)]
    result = CliRunner().invoke(cli, [*cmd, *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_eval_bundle_writes_video_and_strip(random_bundle, tmp_path, monkeypatch, gl_backend):
    from PIL import Image

    video, strip = tmp_path / "run.mp4", tmp_path / "run.png"
    files = ["--video", str(video), "--strip", str(strip), "--strip-frames", "4"]
    out = _eval(random_bundle, monkeypatch, gl_backend, *files, "--max-steps", "8")
    assert "bundle:" in out and "task h1:stand" in out
    assert "planner: return" in out and "over 8 steps" in out
    with Image.open(strip) as im:
        assert im.format == "PNG" and im.size == (4 * W + 3 * 4, H)
        assert np.asarray(im).std() > 5
    written = video if video.exists() else video.with_suffix(".gif")  # no imageio: GIF
    assert written.stat().st_size > 1000 and f"video: {written}" in out
    if written.suffix == ".mp4":
        import imageio.v2 as imageio

        with imageio.get_reader(written) as reader:
            n = sum(1 for _ in reader)
        assert n == 9  # the reset and 8 steps


def test_eval_bundle_policy_only_gif(random_bundle, tmp_path, monkeypatch, gl_backend):
    from PIL import Image

    video = tmp_path / "policy.gif"
    args = ["--video", str(video), "--max-steps", "5", "--policy-only", "--first-seed", "21"]
    out = _eval(random_bundle, monkeypatch, gl_backend, *args)
    assert "policy: return" in out and "over 5 steps" in out and "(seed 21;" in out
    with Image.open(video) as im:
        assert im.format == "GIF" and im.size == (W, H) and im.n_frames == 6
