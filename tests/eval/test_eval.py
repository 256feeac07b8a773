import math

import pytest
import torch

from cinemagraph.eval import metrics
from cinemagraph.eval.compare import main as compare_main
from cinemagraph.eval.data import load_scene, scene_folders
from cinemagraph.eval.methods import METHODS, MethodInput
from cinemagraph.motion.field import MotionField

from .scenes import tiny_scenes


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return tiny_scenes(tmp_path_factory.mktemp("synthetic"), "test")


def test_psnr_and_ssim_on_known_images():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 24, 32, generator=g)
    valid = torch.ones(24, 32, dtype=torch.bool)
    assert metrics.psnr(a, a, valid) == math.inf
    assert metrics.ssim(a, a, valid) == pytest.approx(1.0)
    b = (a + 0.1).clamp(max=5)  # every pixel off by exactly 0.1: MSE 0.01, 20 dB
    assert metrics.psnr(b, a, valid) == pytest.approx(20.0, abs=1e-6)
    from skimage.metrics import structural_similarity

    c = (a + 0.2 * torch.rand(3, 24, 32, generator=g)).clamp(0, 1)
    _, full = structural_similarity(a.permute(1, 2, 0).double().numpy(),
                                    c.permute(1, 2, 0).double().numpy(), channel_axis=2,
                                    data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, full=True)
    # The SSIM map averaged over the valid pixels (here all, borders included).
    assert metrics.ssim(c, a, valid) == pytest.approx(full.mean(), abs=1e-9)
    assert metrics.ssim(c, a, valid) < 0.999


def test_the_worst_window_finds_a_local_change_that_psnr_averages_away():
    target = torch.full((3, 64, 96), 0.5)
    valid = torch.ones(64, 96, dtype=torch.bool)
    pred = target.clone()
    assert metrics.worst_window(pred, target, valid) == 0.0
    pred[1, 10:42, 50:82] += 0.1  # one 32x32 block, one channel, 25.5 8-bit steps
    assert metrics.worst_window(pred, target, valid) == pytest.approx(25.5)
    assert metrics.psnr(pred, target, valid) > 32  # a frame that scores well
    assert metrics.worst_window(pred, target, valid, window=64) == pytest.approx(25.5 / 4)
    valid[:, 50:] = False  # invalid pixels count 0
    assert metrics.worst_window(pred, target, valid) == 0.0


def test_metrics_ignore_invalid_pixels():
    a = torch.full((3, 16, 16), 0.5)
    b = a.clone()
    b[:, :, :8] = 0.0  # wrong only on the left half
    valid = torch.zeros(16, 16, dtype=torch.bool)
    valid[:, 8:] = True
    assert metrics.psnr(b, a, valid) == math.inf
    assert metrics.psnr(b, a, ~valid) == pytest.approx(10 * math.log10(1 / 0.25))
    assert metrics.ssim(b, a, valid) > metrics.ssim(b, a, ~valid)


def test_lpips_is_not_available_without_alexnet_weights_and_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    reason = metrics.lpips_unavailable_reason()
    assert reason is not None and metrics.ALEXNET_FILE in reason
    with pytest.raises(RuntimeError, match="LPIPS unavailable"):
        metrics.LPIPS()


@pytest.mark.skipif(metrics.lpips_unavailable_reason() is not None,
                    reason="LPIPS needs torchvision's AlexNet weights in the torch hub cache")
def test_lpips_is_zero_for_identical_images_and_grows_with_noise():
    model = metrics.LPIPS()
    a = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    valid = torch.ones(64, 64, dtype=torch.bool)
    assert model(a, a, valid) < 1e-6
    assert model((a + 0.3 * torch.randn(3, 64, 64)).clamp(0, 1), a, valid) > 0.05


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_on_a_tiny_scene(dataset, method, tmp_path, monkeypatch):
    if method == "ours-learned":  # untrained weights of a residual preset: plumbing only
        from cinemagraph.spacetime import OWN_WEIGHTS, SpaceTimeModel, save_spacetime

        save_spacetime(SpaceTimeModel("small"), tmp_path / OWN_WEIGHTS)
        monkeypatch.setenv("CINEMAGRAPH_WEIGHTS", str(tmp_path))
    scene = load_scene(scene_folders(dataset, "test")[0])
    path = scene.paths["side"]
    inp = MethodInput(scene.image, scene.depth, MotionField(scene.flow, scene.mask), path, scene.K)
    frames = METHODS[method](inp)
    assert frames.shape == (4, 3, 32, 48)
    assert torch.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1
    # Frame 0 is the photo seen from the source camera: every method gets close to it.
    assert metrics.psnr(frames[0], scene.frames["side"][0], scene.valid["side"][0]) > 25


def test_ground_truth_scores_perfectly_and_noise_badly(dataset, tmp_path, monkeypatch, capsys):
    truth = {f.name: load_scene(f) for f in scene_folders(dataset, "test")}

    def oracle(inp):  # finds its scene by the photo
        for scene in truth.values():
            if torch.equal(scene.image, inp.image):
                return scene.frames["side"]
        raise AssertionError("scene not found")

    def noise(inp):
        g = torch.Generator().manual_seed(0)
        return torch.rand(len(inp.path), *inp.image.shape[1:], generator=g)

    monkeypatch.setitem(METHODS, "oracle", oracle)
    monkeypatch.setitem(METHODS, "noise", noise)
    from cinemagraph.eval import methods as methods_module

    monkeypatch.setitem(methods_module.LABELS, "oracle", "oracle")
    monkeypatch.setitem(methods_module.LABELS, "noise", "noise")
    out = tmp_path / "res"
    assert compare_main(["--data", str(dataset), "--methods", "oracle,noise", "--out", str(out),
                         "--device", "cpu"]) == 0
    rows = {r.split(",")[1]: r.split(",") for r in (out / "per_scene.csv").read_text().splitlines()[1:]}
    assert float(rows["oracle"][2]) == math.inf and float(rows["oracle"][3]) == pytest.approx(1.0)
    assert float(rows["noise"][2]) < 12 and float(rows["noise"][3]) < 0.2
    assert float(rows["oracle"][5]) == 0.0 and float(rows["noise"][5]) > 60  # frame 0's window
    assert (out / "table.md").exists() and (out / "contact_sheet.png").exists()
    table = capsys.readouterr().out
    assert "| oracle | inf |" in table and "| 0.0 |" in table and "Scenes: 2" in table
    # Results are not overwritten without --overwrite; a wrong method name is an error.
    assert compare_main(["--data", str(dataset), "--methods", "noise", "--out", str(out)]) == 2
    assert compare_main(["--data", str(dataset), "--methods", "magic", "--out", str(tmp_path / "x")]) == 2
    assert "unknown method" in capsys.readouterr().err


def test_compare_is_deterministic_and_configurable(dataset, tmp_path):
    args = ["--data", str(dataset), "--methods", "naive-pc,ours", "--device", "cpu"]
    assert compare_main(args + ["--out", str(tmp_path / "a")]) == 0
    assert compare_main(args + ["--out", str(tmp_path / "b"), "contact_scenes=0"]) == 0
    a = (tmp_path / "a" / "per_scene.csv").read_text()
    assert a == (tmp_path / "b" / "per_scene.csv").read_text()
    assert not (tmp_path / "b" / "contact_sheet.png").exists()
    assert compare_main(args + ["--out", str(tmp_path / "c"), "no_such_key=1"]) == 2


def test_missing_data_is_a_clear_error(tmp_path, capsys):
    assert compare_main(["--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no synthetic scenes" in capsys.readouterr().err


def test_lpips_wiring_with_stand_in_alexnet_weights(monkeypatch, tmp_path):
    # Random AlexNet weights at the official file name, only to exercise the plumbing (the
    # spatial map, the valid-pixel mask); the scores of such a network mean nothing.
    torchvision = pytest.importorskip("torchvision")
    pytest.importorskip("lpips")
    (tmp_path / "checkpoints").mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(),
               tmp_path / "checkpoints" / metrics.ALEXNET_FILE)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert metrics.lpips_unavailable_reason() is None
    model = metrics.LPIPS()
    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 64, 64, generator=g)
    valid = torch.ones(64, 64, dtype=torch.bool)
    assert model(a, a, valid) == pytest.approx(0.0, abs=1e-6)
    b = a.clone()
    b[:, :, :32] = torch.rand(3, 64, 32, generator=g)  # changed on the left half only
    right = valid.clone()
    right[:, :32] = False
    assert model(b, a, valid) > model(b, a, right)


def test_estimated_depth_runs_and_the_table_says_so(dataset, tmp_path, capsys):
    assert compare_main(["--data", str(dataset), "--methods", "naive-pc", "--depth", "estimated",
                         "--out", str(tmp_path / "e"), "--device", "cpu"]) == 0
    assert "depth: estimated" in capsys.readouterr().out
    table = (tmp_path / "e" / "table.md").read_text()
    # The machine and the libraries that computed the scores (rounding differs between them).
    line = next(line for line in table.splitlines() if line.startswith("Computed on: CPU "))
    assert torch.backends.cpu.get_cpu_capability() in line
    assert f"torch {torch.__version__.split('+')[0]}" in line and "kornia " in line


def test_scene_psnr_is_taken_from_the_mean_error_not_averaged_over_frames():
    from cinemagraph.eval import metrics

    # A copied frame (error 0) next to a poor one: the scene scores as the poor frame's
    # error halved, not as the mean of "inf" and 20 dB.
    assert metrics.psnr_of_mse([0.0, 0.01]) == pytest.approx(10 * math.log10(1 / 0.005))
    assert metrics.psnr_of_mse([0.0, 0.0]) == math.inf
    assert math.isnan(metrics.psnr_of_mse([]))
