"""A run leaves exactly its own folder: no empty dated folder beside the one a preset names."""
import pytest

import cnnlab
from conftest import FAST, run_cli

# experiment=finetune_pretrain sets hydra.run.dir; a bad max_epochs stops it right after the compose
PRESET_WITH_ITS_OWN_FOLDER = ["experiment=finetune_pretrain", "trainer.max_epochs=-1"]
FOLDER = "outputs/pretrained/fashion8_resnet18w8"


def _folders(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir() and ".hydra" not in p.parts
                  and "attempts" not in p.parts)


def test_a_preset_that_names_its_folder_leaves_no_dated_one_on_the_command_line(tmp_path):
    done = run_cli(PRESET_WITH_ITS_OWN_FOLDER + FAST, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert _folders(tmp_path) == ["outputs", "outputs/pretrained", FOLDER]  # not outputs/DATE/TIME too


def test_nor_through_the_python_api(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cnnlab.errors.ConfigError):
        cnnlab.train(PRESET_WITH_ITS_OWN_FOLDER + FAST)
    assert _folders(tmp_path) == ["outputs", "outputs/pretrained", FOLDER]


def test_the_dated_folder_of_a_plain_run_is_kept(tmp_path):
    done = run_cli(["trainer.max_epochs=-1"] + FAST, cwd=tmp_path)
    assert done.returncode == 2
    dated = [f for f in _folders(tmp_path) if f.count("/") == 2]
    assert len(dated) == 1 and (tmp_path / dated[0] / "results.json").exists()  # its failure record
