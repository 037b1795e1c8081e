"""cnnlab-predict: a trained checkpoint and image files in, the top classes with probabilities out."""
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.config import default_data_dir
from cnnlab.data import load_splits
from cnnlab.data.loader import DeviceLoader
from cnnlab.models import build_model
from cnnlab.predict import main
from cnnlab.run import run_job
from cnnlab.train.checkpoint import load_checkpoint
from conftest import FAST, compose_config

N_IMAGES = 6


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One epoch on digits; returns (run folder, the training config)."""
    overrides = FAST + ["trainer.max_epochs=1", "trainer.diagnostics=false"]
    cfg = compose_config(overrides)
    run_dir = tmp_path_factory.mktemp("run")
    run_job(cfg, run_dir, overrides)
    return run_dir, cfg


def parse(output: str) -> dict:
    """{image: [(class, probability), ...]} from the printed blocks."""
    parsed, current = {}, None
    for line in output.splitlines():
        if not line.startswith("  "):
            current = parsed.setdefault(line, [])
        else:
            rank, rest = line.strip().split(". ", 1)
            name, prob = rest.rsplit("  ", 1)
            assert int(rank) == len(current) + 1 and prob.endswith("%")
            current.append((name, float(prob[:-1]) / 100))
    return parsed


def test_predictions_match_the_model_on_the_same_test_images(trained, tmp_path, capsys):
    run_dir, cfg = trained
    splits = load_splits(cfg.dataset, default_data_dir())
    images = splits.test_x[:N_IMAGES]  # uint8 [N, 1, 8, 8]
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"test_{i}.png")
        Image.fromarray(image[0].numpy(), mode="L").save(paths[-1])

    checkpoint_path = run_dir / "checkpoints" / "best.pt"
    main([str(checkpoint_path), *map(str, paths), "--top", "3"])
    printed = parse(capsys.readouterr().out)

    # the same images through the training config's model and the training loader's normalization
    state = load_checkpoint(checkpoint_path)
    model = build_model(cfg.model, tuple(state["shape"]), len(state["classes"]))
    model.load_state_dict(state["model"])
    model.eval()
    x, _ = next(iter(DeviceLoader(images, splits.test_y[:N_IMAGES], N_IMAGES, state["mean"], state["std"])))
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1)
    assert list(printed) == [str(p) for p in paths]
    for path, probs in zip(paths, expected):
        top = printed[str(path)]
        assert len(top) == 3 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
        assert top[0][0] == state["classes"][int(probs.argmax())]
        for name, p in top:
            assert p == pytest.approx(float(probs[state["classes"].index(name)]), abs=5e-5)


def test_default_top_is_five_and_other_sizes_and_color_are_converted(trained, tmp_path, capsys):
    run_dir, _ = trained
    big_color = tmp_path / "big.jpg"  # 40x30 RGB: converted to 1 channel and fitted to 8x8
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(big_color)
    main([str(run_dir / "checkpoints" / "last.pt"), str(big_color)])
    top = parse(capsys.readouterr().out)[str(big_color)]
    assert len(top) == 5 and 0 < sum(p for _, p in top) <= 1.0001


@pytest.mark.parametrize("case, expected", [
    ("missing_image", "no such image file"),
    ("unreadable_image", "could not read"),
    ("not_a_checkpoint", "junk.pt"),  # the message is checkpoint.py's
    ("missing_checkpoint", "does not exist"),
    ("foreign_checkpoint", "not a cnnlab"),
])
def test_clear_errors(trained, tmp_path, capsys, case, expected):
    checkpoint = trained[0] / "checkpoints" / "best.pt"
    image = tmp_path / "ok.png"
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8), mode="L").save(image)
    if case == "missing_image":
        image = tmp_path / "nope.png"
    elif case == "unreadable_image":
        image = tmp_path / "text.png"
        image.write_text("not an image")
    elif case == "not_a_checkpoint":
        checkpoint = tmp_path / "junk.pt"
        checkpoint.write_bytes(b"\x00" * 100)
    elif case == "missing_checkpoint":
        checkpoint = tmp_path / "none.pt"
    elif case == "foreign_checkpoint":
        checkpoint = tmp_path / "weights.pt"
        torch.save({"w": torch.zeros(2)}, checkpoint)
    with pytest.raises(SystemExit) as exit_info:
        main([str(checkpoint), str(image)])
    err = capsys.readouterr().err
    assert exit_info.value.code != 0 and expected in err and err.startswith("cnnlab-predict: error:"), err


def test_console_script_is_registered():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("cnnlab-predict") == "cnnlab.predict:main"


# ---------------------------------------------------------------- the same pixels as training
SIZE = 12


def image_of_mode(mode: str, seed: int):
    """50x37 noise (twice the size and more, so JPEG's reduced-scale decoding applies) in this mode."""
    rgb = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (37, 50, 3), dtype=np.uint8))
    if mode == "RGBA":
        rgba = rgb.convert("RGBA")
        rgba.putalpha(Image.fromarray(np.random.default_rng(seed + 1).integers(0, 256, (37, 50), dtype=np.uint8)))
        return rgba
    return rgb.convert(mode)


FILES = {"rgb.jpg": "RGB", "gray.png": "L", "rgba.png": "RGBA", "palette.png": "P", "cmyk.jpg": "CMYK"}


def folder_dataset(root, files):
    """train/<one class per file>/ and the same files in val/, so each file is one known training image."""
    for i, (name, mode) in enumerate(files.items()):
        for part in ("train", "val"):
            (root / part / f"c{i}").mkdir(parents=True)
            image_of_mode(mode, i).save(root / part / f"c{i}" / name)
    return root


@pytest.mark.parametrize("files, channels", [(FILES, 3), ({"gray.png": "L", "gray2.png": "L"}, 1)])
def test_predict_prepares_a_file_exactly_as_the_folder_loader_does(tmp_path, files, channels):
    from cnnlab.config import DatasetConfig
    from cnnlab.data.sources.folder import load_folder
    from cnnlab.predict import load_image

    root = folder_dataset(tmp_path / "imgs", files)
    assert Image.open(root / "train" / "c0" / next(iter(files))).mode == next(iter(files.values()))
    splits = load_folder(DatasetConfig(name="folder", path=str(root), image_size=SIZE), tmp_path / "data")
    assert splits.train_x.shape == (len(files), channels, SIZE, SIZE)
    for i, name in enumerate(files):
        predicted = load_image(root / "train" / f"c{i}" / name, (channels, SIZE, SIZE))
        assert predicted.dtype == torch.uint8
        assert torch.equal(predicted, splits.train_x[i]), name


def test_a_color_image_for_a_gray_model_is_converted_before_resizing(tmp_path):
    from cnnlab.data.decode import decode_image
    from cnnlab.predict import load_image

    path = tmp_path / "rgb.png"
    image_of_mode("RGB", 0).save(path)
    gray = load_image(path, (1, SIZE, SIZE))
    assert gray.shape == (1, SIZE, SIZE)
    assert torch.equal(gray[0], torch.from_numpy(decode_image(path, SIZE, channels=1).copy()))
