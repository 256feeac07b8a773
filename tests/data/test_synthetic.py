import json

import numpy as np
import pytest
import torch

from cinemagraph.data.dataset import SyntheticScenes
from cinemagraph.data.scene import (Rect, Scene, cast_rays, render_view, sample_scene,
                                    scene_seed, source_geometry)
from cinemagraph.data.synthetic import main, make_sample
from cinemagraph.data.textures import PHOTOS, TEXTURE_SIZE, _photo, fbm

SIZE = (48, 64)  # (H, W); f = 64, principal point (31.5, 23.5)


def constant_atlas(*colors):
    return torch.cat([torch.tensor(c, dtype=torch.float32)[:, None, None]
                      .expand(3, TEXTURE_SIZE, TEXTURE_SIZE) for c in colors], dim=2)


def textured_atlas(seed=0):
    rng = np.random.default_rng(seed)
    return fbm(rng, octaves=5, base=8).expand(3, -1, -1).contiguous()


def rect(name, origin, u, v, texture=0, scale=TEXTURE_SIZE / 4.0, **kw):
    return Rect(name, list(origin), list(u), list(v), texture, scale, [0.0, 0.0], **kw)


def test_depth_is_the_analytic_surfaces_depth():
    # A wall at z = 5 above the horizon row, a ground plane y = 1 below it.
    scene = Scene([rect("wall", (-20, -20, 5), (40, 0, 0), (0, 21, 0)),
                   rect("ground", (-50, 1, 0.01), (100, 0, 0), (0, 0, 200), texture=1)],
                  constant_atlas((1, 0, 0), (0, 1, 0)), ["a", "b"], SIZE, 0, "train")
    g = source_geometry(scene.tensors(), scene.K, SIZE)
    depth, rects = g["depth"][0], g["rect"]
    f, cy = 64.0, 23.5
    rows = torch.arange(SIZE[0], dtype=torch.float32)[:, None].expand(SIZE)
    ground = rects == 1
    assert ground.any() and (rects == 0).any() and (rects >= 0).all()
    # Ground: y = 1 at depth z where (row - cy) / f * z = 1.
    assert torch.allclose(depth[ground], (f / (rows - cy))[ground], rtol=1e-5)
    assert torch.allclose(depth[rects == 0], torch.full_like(depth[rects == 0], 5.0))
    # Rows below the horizon and nearer than the wall see the ground, the others the wall.
    assert torch.equal(ground, (rows > cy) & (f / (rows - cy).clamp_min(1e-6) < 5.0))


def test_source_camera_at_time_zero_reproduces_the_source_image_exactly():
    scene = sample_scene(scene_seed(3, "train", 0), "train", SIZE)
    sample = make_sample(scene, 3, ("circle",), supersample=2)
    assert torch.equal(sample["anim"]["frames"][0], sample["image"])
    assert torch.equal(sample["circle"]["nvs"]["frames"][0], sample["image"])
    assert torch.equal(sample["circle"]["both"]["frames"][0], sample["image"])
    # ...and the animation changes the pixels that see fluid (with any of their 2 x 2 rays),
    # and only those.
    changed = (sample["anim"]["frames"][2] - sample["image"]).abs().amax(0) > 1e-4
    st = scene.tensors()
    ys, xs = torch.meshgrid(torch.arange(SIZE[0]).float(), torch.arange(SIZE[1]).float(),
                            indexing="ij")
    sees_fluid = torch.zeros(SIZE, dtype=torch.bool)
    for oy in (-0.25, 0.25):
        for ox in (-0.25, 0.25):
            xy = torch.stack([xs.flatten() + ox, ys.flatten() + oy], 1)
            hit = cast_rays(st, torch.eye(4), scene.K, xy).rect.view(SIZE)
            sees_fluid |= (hit >= 0) & st.fluid[hit.clamp_min(0)]
    assert changed.sum() > 0.5 * sees_fluid.sum() > 0
    assert not (changed & ~sees_fluid).any()


def test_advected_texture_moves_at_the_exported_speed():
    from skimage.registration import phase_cross_correlation

    # A fronto-parallel fluid wall at z = 4 filling the view, flowing right and down.
    flow = [0.05, 0.025]  # scene units per frame: 64 * 0.05 / 4 = 0.8 px, 0.4 px
    scene = Scene([rect("water", (-20, -20, 4), (40, 0, 0), (0, 40, 0), scale=40.0, flow=flow)],
                  textured_atlas(), ["noise"], SIZE, 0, "train")
    st = scene.tensors()
    g = source_geometry(st, scene.K, SIZE)
    assert g["mask"].all()
    assert torch.allclose(g["motion"][0], torch.full(SIZE, 0.8), atol=1e-4)
    assert torch.allclose(g["motion"][1], torch.full(SIZE, 0.4), atol=1e-4)
    eye = torch.eye(4)
    first, _ = render_view(st, eye, scene.K, SIZE, 0.0)
    later, _ = render_view(st, eye, scene.K, SIZE, 5.0)
    # Measured shift of the picture content after 5 frames (row, column), sub-pixel.
    shift, _, _ = phase_cross_correlation(later[0].numpy(), first[0].numpy(), upsample_factor=20)
    assert abs(shift[1] - 5 * 0.8) < 0.15 and abs(shift[0] - 5 * 0.4) < 0.15


def test_sheared_flow_matches_its_field_pixel_by_pixel():
    # The exported field predicts where each fluid pixel's colour goes next frame.
    scene = Scene([rect("fall", (-20, -20, 4), (40, 0, 0), (0, 40, 0), scale=10.0,
                        flow=[0.0, 0.06], shear=0.5, period=2.0)],
                  textured_atlas(1), ["noise"], SIZE, 0, "train")
    st = scene.tensors()
    g = source_geometry(st, scene.K, SIZE)
    speed = g["motion"][1]
    assert speed.max() > 1.3 * speed.min()  # the speed varies across the stream
    eye = torch.eye(4)
    now, _ = render_view(st, eye, scene.K, SIZE, 3.0)
    nxt, _ = render_view(st, eye, scene.K, SIZE, 4.0)
    ys, xs = torch.meshgrid(torch.arange(SIZE[0]).float(), torch.arange(SIZE[1]).float(),
                            indexing="ij")
    from cinemagraph.conventions import bilinear_sample

    target = torch.stack([xs + g["motion"][0], ys + g["motion"][1]], -1).view(-1, 2)
    moved = bilinear_sample(nxt[None], target).t().reshape(3, *SIZE)
    inside = (target[:, 1] < SIZE[0] - 2).view(SIZE)
    err_flow = (moved - now).abs()[:, inside].mean()
    err_still = (nxt - now).abs()[:, inside].mean()
    assert err_flow < 0.1 * err_still


def test_a_near_box_occludes_and_a_sideways_move_uncovers_what_it_hid():
    # Far wall (red) at z = 10; near square (green) at z = 2 covering columns ~22..41.
    scene = Scene([rect("far", (-40, -40, 10), (80, 0, 0), (0, 80, 0), texture=0),
                   rect("near", (-0.3, -0.3, 2), (0.6, 0, 0), (0, 0.6, 0), texture=1)],
                  constant_atlas((1, 0, 0), (0, 1, 0)), ["red", "green"], SIZE, 0, "train")
    st = scene.tensors()
    f, cx = 64.0, 31.5
    green = lambda img: img[1] > 0.5  # noqa: E731
    src, _ = render_view(st, torch.eye(4), scene.K, SIZE)
    cols = green(src)[SIZE[0] // 2].nonzero()[:, 0]
    left, right = cx - 0.3 * f / 2, cx + 0.3 * f / 2  # edges of the square, in pixels
    assert cols.min() == int(np.ceil(left)) and cols.max() == int(np.floor(right))
    # Camera 0.25 to the right: the square moves left by f * 0.25 / 2 = 8 px, the wall by 1.6.
    pose = torch.eye(4)
    pose[0, 3] = -0.25  # world-to-camera translation of a camera at x = +0.25
    moved, valid = render_view(st, pose, scene.K, SIZE)
    cols = green(moved)[SIZE[0] // 2].nonzero()[:, 0]
    assert cols.min() == int(np.ceil(left - 8.0)) and cols.max() == int(np.floor(right - 8.0))
    # What the square hid on its right is uncovered, and shows the wall.
    row = SIZE[0] // 2
    assert green(src)[row, int(right) - 2] and not green(moved)[row, int(right) - 2]
    assert moved[0, row, int(right) - 2] > 0.9 and valid.all()


def test_same_seed_same_scene_and_frames():
    a = sample_scene(scene_seed(7, "test", 4), "test", SIZE)
    b = sample_scene(scene_seed(7, "test", 4), "test", SIZE)
    assert json.dumps(a.describe()) == json.dumps(b.describe())
    assert torch.equal(a.atlas, b.atlas)
    sa, sb = make_sample(a, 2, ("zoom-in",)), make_sample(b, 2, ("zoom-in",))
    assert torch.equal(sa["zoom-in"]["both"]["frames"], sb["zoom-in"]["both"]["frames"])
    assert torch.equal(sa["motion"], sb["motion"])
    c = sample_scene(scene_seed(7, "test", 5), "test", SIZE)
    assert json.dumps(c.describe()) != json.dumps(a.describe())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_scene_made_on_cuda_is_the_scene_made_on_the_cpu():
    seed = scene_seed(3, "test", 1)
    cpu = sample_scene(seed, "test", SIZE)
    gpu = sample_scene(seed, "test", SIZE, device="cuda")
    assert json.dumps(cpu.describe()) == json.dumps(gpu.describe())
    assert torch.allclose(cpu.atlas, gpu.atlas.cpu(), atol=1e-4)
    a, b = make_sample(cpu, 2, ("zoom-in",)), make_sample(gpu, 2, ("zoom-in",), device="cuda")
    frames_a, frames_b = a["zoom-in"]["both"]["frames"], b["zoom-in"]["both"]["frames"].cpu()
    assert (frames_a - frames_b).abs().mean() < 1e-3


def test_the_splits_share_no_photograph_and_no_seed():
    from itertools import combinations

    names = ("train", "test", "val")
    seeds = {split: {scene_seed(0, split, i) for i in range(2000)} for split in names}
    assert all(len(s) == 2000 for s in seeds.values())
    for a, b in combinations(names, 2):
        assert not set(PHOTOS[a]) & set(PHOTOS[b]), (a, b)
        assert not seeds[a] & seeds[b], (a, b)
    for split in ("test", "val"):
        used = set()
        for i in range(12):
            scene = sample_scene(scene_seed(0, split, i), split, (24, 32))
            used |= {t.split(":")[1] for t in scene.textures if t.startswith("photo:")}
        assert used and used <= set(PHOTOS[split]), split


def test_every_photograph_of_every_split_loads_as_rgb_in_range():
    for names in PHOTOS.values():
        for name in names:
            image, _ = _photo(name)
            assert image.ndim == 3 and image.shape[0] == 3 and min(image.shape[1:]) >= 64, name
            assert image.min() >= 0 and image.max() <= 1 and image.std() > 0.01, name


def test_an_unknown_split_names_the_known_ones():
    with pytest.raises(ValueError, match="train, test, val"):
        scene_seed(0, "validation", 0)


def test_sampled_scenes_are_normalised_and_have_moving_fluid():
    for i in range(4):
        scene = sample_scene(scene_seed(1, "train", i), "train", SIZE)
        g = source_geometry(scene.tensors(), scene.K, SIZE)
        depth = g["depth"].flatten()
        assert abs(float(torch.quantile(depth, 0.02)) - 1.0) < 0.02
        assert g["mask"].any() and g["motion"].abs().amax() > 0.1
        assert (g["motion"].abs().sum(0) > 0).logical_and(~g["mask"][0]).sum() == 0


def test_dataset_items_are_deterministic_and_can_pick_frames():
    data = SyntheticScenes(3, "train", seed=2, size=(24, 32), frames=10, paths=("side",),
                           frames_per_item=3)
    a, b = data[1], data[1]
    assert a["frame_indices"] == b["frame_indices"] and len(a["frame_indices"]) == 3
    assert torch.equal(a["side"]["both"]["frames"], b["side"]["both"]["frames"])
    assert a["side"]["both"]["frames"].shape == (3, 3, 24, 32)
    assert a["side"]["world_to_camera"].shape == (10, 4, 4)
    with pytest.raises(IndexError):
        data[3]


def test_command_writes_the_documented_layout(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["--out", str(out), "--scenes", "2", "--seed", "1", "--size", "32x24", "--frames",
            "3", "--paths", "circle", "--supersample", "1", "--contact-sheet",
            str(tmp_path / "sheet.png")]
    assert main(args) == 0
    scene = out / "train" / "scene_00001"
    for name in ("image.png", "depth.npy", "motion.npy", "mask.png", "camera.json",
                 "scene.json", "anim/frame_00002.png", "anim/valid.npy",
                 "circle/camera.json", "circle/nvs/frame_00002.png", "circle/both/valid.npy"):
        assert (scene / name).exists(), name
    assert np.load(scene / "depth.npy").shape == (24, 32)
    assert np.load(scene / "motion.npy").shape == (2, 24, 32)
    assert np.load(scene / "circle" / "both" / "valid.npy").shape == (3, 24, 32)
    assert len(json.loads((scene / "circle" / "camera.json").read_text())["K"]) == 3
    assert (tmp_path / "sheet.png").exists()
    assert not list(out.rglob("*.partial"))
    # Existing scenes are not overwritten without --overwrite.
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_command_rejects_bad_arguments(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--scenes", "1", "--size", "big"]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), "--scenes", "1", "--paths", "loop"]) == 2
    assert "unknown camera path" in capsys.readouterr().err


def test_rays_that_hit_nothing_are_invalid():
    scene = Scene([rect("small", (-0.1, -0.1, 2), (0.2, 0, 0), (0, 0.2, 0))],
                  constant_atlas((1, 1, 1)), ["white"], SIZE, 0, "train")
    st = scene.tensors()
    image, valid = render_view(st, torch.eye(4), scene.K, SIZE)
    assert valid.any() and not valid.all()
    assert (image[:, ~valid] == 0).all()
    hits = cast_rays(st, torch.eye(4), scene.K, torch.tensor([[0.0, 0.0], [31.5, 23.5]]))
    assert hits.rect.tolist() == [-1, 0] and hits.depth[1] == 2.0


def test_prefetcher_yields_the_items_in_order_and_passes_errors_on():
    from cinemagraph.data.dataset import Prefetcher

    data = SyntheticScenes(3, "test", seed=1, size=(16, 16), frames=2, paths=("side",),
                           kinds=("nvs",))
    got = list(Prefetcher(data[i] for i in range(3)))
    assert len(got) == 3
    for i, item in enumerate(got):
        assert torch.equal(item["image"], data[i]["image"])

    def broken():
        yield data[0]
        raise ValueError("bad scene")

    it = Prefetcher(broken())
    next(it)
    with pytest.raises(ValueError, match="bad scene"):
        next(it)


def test_floaters_hover_behind_a_box_and_leave_the_rest_of_the_scene_as_it_was():
    seen = 0
    for i in range(3):
        seed = scene_seed(0, "train", i)
        plain = sample_scene(seed, "train", (96, 128))
        scene = sample_scene(seed, "train", (96, 128), floaters=3)
        n = len(plain.rects)
        scale = scene.rects[0].texel_scale / plain.rects[0].texel_scale  # normalisation
        assert [r.name for r in scene.rects[:n]] == [r.name for r in plain.rects]
        assert torch.equal(scene.atlas[:, :, :plain.atlas.shape[2]], plain.atlas)
        assert all(np.allclose(np.array(b.origin) * scale, a.origin, rtol=1e-5)
                   for a, b in zip(plain.rects, scene.rects[:n]))
        floaters = scene.rects[n:]
        assert sorted({r.name.split(".")[0] for r in floaters}) == ["floater0", "floater1",
                                                                    "floater2"]
        box_fronts = [r.origin[2] for r in scene.rects[:n] if r.name.endswith(".front")]
        for r in floaters:
            if r.name.endswith(".front"):
                assert min(box_fronts) < r.origin[2]  # behind some box
        visible = scene.geometry["rect"] >= n
        seen += int(visible.sum())
    assert seen > 0


def _write_photos(folder, n=2, size=(40, 72)):
    import imageio.v3 as iio

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        iio.imwrite(folder / f"p{i}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    iio.imwrite(folder / "grey.png", rng.integers(0, 256, size, dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_extra_photographs_come_from_a_folder_and_only_into_training_scenes(tmp_path):
    from cinemagraph.data.textures import photo_files, photo_texture
    from cinemagraph.errors import UserError

    files = photo_files(str(_write_photos(tmp_path / "photos")))
    assert [f.rsplit("/", 1)[-1] for f in files] == ["grey.png", "p0.png", "p1.png"]
    drawn = set()
    for i in range(60):
        tex, name = photo_texture("train", np.random.default_rng(i), 32, extra=files)
        assert tex.shape == (3, 32, 32) and 0 <= tex.min() and tex.max() <= 1
        drawn.add(name)
    # Each file as often as a built-in photograph: all three and some of the ten come up.
    assert {"file:grey.png", "file:p0.png", "file:p1.png"} <= drawn
    assert drawn & set(PHOTOS["train"])
    # The same seed draws the same scene; with the files it is another one.
    a = sample_scene(scene_seed(0, "train", 5), "train", (24, 32), photos=files)
    b = sample_scene(scene_seed(0, "train", 5), "train", (24, 32), photos=files)
    assert a.textures == b.textures and torch.equal(a.atlas, b.atlas)
    with pytest.raises(ValueError, match="train split"):
        photo_texture("test", np.random.default_rng(0), 32, extra=files)
    with pytest.raises(UserError, match="does not exist"):
        photo_files(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no image"):
        photo_files(str(tmp_path / "empty"))
    assert photo_files(None) == ()


def test_a_large_extra_photograph_is_shrunk_and_a_broken_one_named(tmp_path):
    import imageio.v3 as iio

    from cinemagraph.data.textures import EXTRA_PHOTO_SIZE, _photo_file
    from cinemagraph.errors import UserError

    big = tmp_path / "big.png"
    iio.imwrite(big, np.full((EXTRA_PHOTO_SIZE + 200, EXTRA_PHOTO_SIZE // 2, 3), 200, np.uint8))
    image, grey = _photo_file(str(big))
    assert image.shape == (3, EXTRA_PHOTO_SIZE, round(EXTRA_PHOTO_SIZE / 2 * EXTRA_PHOTO_SIZE
                                                       / (EXTRA_PHOTO_SIZE + 200)))
    assert not grey and torch.allclose(image, torch.tensor(200 / 255), atol=1e-3)
    grey_alpha = tmp_path / "grey_alpha.png"
    iio.imwrite(grey_alpha, np.full((40, 60, 2), 90, np.uint8))
    image, grey = _photo_file(str(grey_alpha))
    assert grey and image.shape == (3, 40, 60)
    assert torch.allclose(image, torch.tensor(90 / 255), atol=1e-3)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match="broken.jpg"):
        _photo_file(str(broken))
