"""Start-up work that only some commands need is done when they need it, with the same result."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

# the entries Hydra's plugin scan and cnnlab's import store at every start
SCRIPT = r"""
import json
import cnnlab.cli
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from omegaconf import OmegaConf
from cnnlab.lazy_schema import LazySchema

Plugins.instance()  # the scan that imports every installed plugin, as each command's start does
store = ConfigStore.instance()
found = {}

def walk(folder, path):
    for key, value in folder.items():
        if isinstance(value, dict):
            walk(value, path + [key])
        elif isinstance(value, LazySchema):
            loaded = store.load("/".join(path + [key]))
            found["/".join(path + [key])] = {
                "same": OmegaConf.to_yaml(loaded.node) == OmegaConf.to_yaml(OmegaConf.structured(value._schema)),
                "type": OmegaConf.get_type(loaded.node) is (value._schema if isinstance(value._schema, type)
                                                          else type(value._schema)),
                "where": [loaded.group, loaded.package, loaded.provider],
            }

walk(store.repo, [])
print(json.dumps(found))
"""


def test_the_root_schema_and_the_plugins_settings_are_made_when_loaded_and_load_the_same():
    out = subprocess.run([sys.executable, "-c", SCRIPT], check=True, capture_output=True, text=True).stdout
    found = json.loads(out.splitlines()[-1])
    expected = {
        "cnnlab_schema.yaml": [None, None, "cnnlab"],
        "hydra/launcher/basic.yaml": ["hydra/launcher", None, "hydra"],
        "hydra/sweeper/basic.yaml": ["hydra/sweeper", None, "hydra"],
        "hydra/launcher/submitit_slurm.yaml": ["hydra/launcher", None, "submitit_launcher"],
        "hydra/launcher/submitit_local.yaml": ["hydra/launcher", None, "submitit_launcher"],
        "hydra/launcher/joblib.yaml": ["hydra/launcher", None, "joblib_launcher"],
        "hydra/sweeper/optuna.yaml": ["hydra/sweeper", None, "optuna_sweeper"],
        "hydra/sweeper/sampler/tpe.yaml": ["hydra/sweeper/sampler", None, "optuna_sweeper"],
        "schema/model/cnn.yaml": ["schema/model", None, "cnnlab"],
    }
    for path, where in expected.items():
        assert path in found, f"{path} was stored as a node made at start-up"
        assert found[path]["where"] == where, path
    for path, seen in found.items():
        assert seen["same"] and seen["type"], f"{path} loads differently from its dataclass"


CONF = __import__("pathlib").Path(__file__).resolve().parents[1] / "conf"
TRICKY = [
    "lr: 1e-3\nwd: 5e-4\nx: .5\ny: 1_000\nz: +1.5",  # YAML 1.2 floats OmegaConf adds
    "when: 2026-12-01\nat: 2026-12-01 10:00:00",  # no timestamps: they stay strings
    "a: null\nb: ~\nc: yes\nd: off\ne: 0o17\nf: 0x1f\ng: .inf\nh: -.Inf\ni: .nan",
    "s: '${oc.env:HOME}'\nt: ${now:%Y-%m-%d}\nu: \"\\u00e9\"\nlist: [1, 2.5, x, {k: v}]",
    "defaults:\n  - override /model: fast_cnn\n  - _self_\n# comment\nnested:\n  deep: {a: [1, [2, 3]]}",
    "anchor: &a {x: 1}\nref: *a\nmulti: |\n  two\n  lines\nfolded: >\n  one\n  line\n",
]
BAD = ["a: 1\na: 2", "a: [1, 2", "a: b: c", "\tkey: 1", "a:\n  - 1\n - 2"]


def _both(text):
    import yaml

    from cnnlab import fast_yaml

    pure = fast_yaml._OMEGACONFS  # what omegaconf._utils.get_yaml_loader was before cnnlab.cli's import
    assert not getattr(pure, "cnnlab", False)
    fast = fast_yaml._loader()
    assert issubclass(fast, yaml.CSafeLoader)
    results = []
    for loader in (pure(), fast):
        try:
            results.append(("ok", yaml.load(text, Loader=loader)))
        except yaml.YAMLError as exc:
            results.append(("error", type(exc).__name__, getattr(exc, "problem_mark", None) and
                            (exc.problem_mark.line, exc.problem_mark.column)))
    return results


def test_the_c_yaml_loader_reads_every_conf_file_and_tricky_text_as_omegaconfs_own():
    files = sorted(CONF.rglob("*.yaml"))
    assert len(files) > 40
    for text in [f.read_text() for f in files] + TRICKY:
        pure, fast = _both(text)
        assert pure[0] == "ok" and pure == fast, text


def test_the_c_yaml_loader_refuses_what_omegaconfs_refuses():
    for text in BAD:
        pure, fast = _both(text)
        assert pure[0] == "error" and fast[0] == "error", text
    pure, fast = _both(BAD[0])
    assert pure == fast  # the duplicate key, at the same place


def test_the_command_parses_conf_in_c():
    code = "import cnnlab.cli, yaml; from omegaconf import _utils; print(issubclass(_utils.get_yaml_loader(), yaml.CSafeLoader))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "True"


def test_validate_merges_onto_one_cached_schema_that_no_run_changes():
    from omegaconf import OmegaConf

    from cnnlab.config import RootConfig, root_schema
    from conftest import compose_config

    fresh = OmegaConf.to_yaml(OmegaConf.structured(RootConfig))
    first = compose_config(["seed=7", "trainer.max_epochs=3", "loss.label_smoothing=0.2"])  # validated
    second = compose_config([])
    assert (first.seed, first.trainer.max_epochs, first.loss.label_smoothing) == (7, 3, 0.2)
    assert (second.seed, second.trainer.max_epochs, second.loss.label_smoothing) != (7, 3, 0.2)
    assert root_schema() is root_schema() and OmegaConf.to_yaml(root_schema()) == fresh


def test_a_broken_yaml_file_is_still_refused_in_one_paragraph_naming_its_line(tmp_path):
    from conftest import run_cli

    (tmp_path / "mine" / "experiment").mkdir(parents=True)
    (tmp_path / "mine" / "experiment" / "broken.yaml").write_text("# @package _global_\nseed: [1, 2\n")
    done = run_cli([f"hydra.searchpath=[file://{tmp_path / 'mine'}]", "+experiment=broken"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "broken.yaml\", line 2" in done.stderr and "']'" in done.stderr


def test_a_lazy_store_names_its_entry_as_hydras_store_does():
    from dataclasses import dataclass

    from hydra.core.config_store import ConfigStore

    import cnnlab.cli  # noqa: F401 - installs the lazy store

    @dataclass
    class Probe:
        size: int = 3

    store = ConfigStore.instance()
    store.store(group="cnnlab_test/probe", name="plain", node=Probe)
    store.store(group="cnnlab_test/probe", name="suffixed.yaml", node=Probe(size=5), package="here")
    try:
        assert sorted(store.list("cnnlab_test/probe")) == ["plain.yaml", "suffixed.yaml"]
        assert store.load("cnnlab_test/probe/plain.yaml").node.size == 3
        loaded = store.load("cnnlab_test/probe/suffixed.yaml")
        assert (loaded.node.size, loaded.package, loaded.group) == (5, "here", "cnnlab_test/probe")
    finally:
        store.repo.pop("cnnlab_test")


@pytest.mark.parametrize("cache, kept", [(True, False), (False, True)])
def test_the_startup_benchmark_runs_with_the_bytecode_cache_an_install_has(cache, kept, monkeypatch):
    """scripts/startup.py: torch's modules come compiled from pip, so cnnlab's must not be compiled at
    every start of the runs just because the environment says so (unless asked)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from startup import run_environment

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("CNNLAB_SOMETHING", "kept")
    env = run_environment(bytecode_cache=cache)
    assert ("PYTHONDONTWRITEBYTECODE" in env) is kept and env["CNNLAB_SOMETHING"] == "kept"
