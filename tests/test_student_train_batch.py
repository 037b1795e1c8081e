"""train_batch.png: the first training batch exactly as the model receives it, taken before training."""
import subprocess
import sys

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cnnlab.data.loader import DeviceLoader
from cnnlab.data.preview import first_batch, to_pixels

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
AUGMENTED = ["dataset.augment.crop=2", "dataset.augment.flip=true", "trainer.num_threads=1", "dataset.train_size=300"]


def test_the_picture_is_the_loops_first_batch_and_changes_nothing():
    x = torch.randint(0, 256, (100, 3, 8, 8), dtype=torch.uint8)
    y = torch.arange(100) % 5
    make = lambda: DeviceLoader(x, y, 16, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3], shuffle=True, crop=2,
                                flip=True, generator=torch.Generator().manual_seed(3))
    loader, twin = make(), make()
    shown, labels = first_batch(loader)
    for lo in (loader, twin):
        lo.set_epoch(1)
    seen, seen_labels = next(iter(loader))
    assert torch.equal(shown, seen) and torch.equal(labels, seen_labels)
    assert torch.equal(seen, next(iter(twin))[0])  # augmentation drew the same numbers as without the picture
    # de-normalized: the pixels of the original images, cropped and flipped
    pixels = to_pixels(shown, [0.4, 0.5, 0.6], [0.2, 0.25, 0.3])
    assert pixels.dtype == torch.uint8 and pixels.shape == (16, 3, 8, 8)
    assert set(pixels.unique().tolist()) <= set(x.unique().tolist()) | {0}


def test_every_run_saves_it_as_png_and_tensorboard_image(train_run, tmp_path):
    _, run_dir = train_run(["trainer.max_epochs=1", "trainer.diagnostics=true"] + AUGMENTED, tmp_path / "on")
    data = (run_dir / "train_batch.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert "data/train_batch" in EventAccumulator(str(run_dir)).Reload().Tags()["images"]
    from PIL import Image

    with Image.open(run_dir / "train_batch.png") as picture:  # 8 x 8 tiles of 8x8 digits scaled to 64 px
        assert picture.width >= 8 * 64 and picture.height >= 8 * 64


def test_diagnostics_false_skips_it_and_training_is_the_same_either_way(train_run, tmp_path):
    on, on_dir = train_run(["trainer.max_epochs=2", "trainer.diagnostics=true"] + AUGMENTED, tmp_path / "on")
    off, off_dir = train_run(["trainer.max_epochs=2"] + AUGMENTED, tmp_path / "off")
    assert not (off_dir / "train_batch.png").exists() and (on_dir / "train_batch.png").exists()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(on["history"]) == strip(off["history"]) and on["test_acc"] == off["test_acc"]


def test_a_run_imports_no_matplotlib_before_its_first_step_nor_after(tmp_path):
    code = f"""
import sys
import cnnlab, cnnlab.run as run
build, seen = run.build_run_model, []
def hooked(*args, **kwargs):
    model = build(*args, **kwargs)
    model.register_forward_pre_hook(lambda module, inputs: seen.append("matplotlib" in sys.modules))
    return model
run.build_run_model = hooked
cnnlab.train(["trainer.max_epochs=1", "trainer.summary=false", "trainer.progress=false", "device=cpu",
              "trainer.num_threads=1", "hydra.run.dir={tmp_path / 'run'}"])
print(seen[0], "matplotlib" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # PIL draws the batch and the diagnostics after training: matplotlib is never imported by a run
    assert done.stdout.strip().splitlines()[-1] == "False False"
    assert (tmp_path / "run" / "train_batch.png").exists() and (tmp_path / "run" / "confusion_matrix.png").exists()
