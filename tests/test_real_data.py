"""Real data, real accuracy: the lecture CNN on Debian's Fashion-MNIST (installed by .ci/run)."""
import pytest

from conftest import FASHION_DEBIAN

pytestmark = pytest.mark.skipif(not FASHION_DEBIAN.is_dir(),
                                reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")


@pytest.mark.slow
def test_lecture_cnn_reaches_88_percent_on_fashion_mnist_in_two_epochs(train_run, tmp_path):
    results, _ = train_run(["dataset=fashion_mnist", "model=lecture_cnn", "optim=adam", "trainer.max_epochs=2",
                            f"data_dir={tmp_path / 'nothing-here'}"])
    assert results["epochs"] == 2
    assert results["test_acc"] >= 0.88, results["history"]


@pytest.mark.slow
def test_fast_preset_reaches_91_percent_on_fashion_mnist(train_run):
    # the speed issue's floor; docs/benchmarks.md: seeds 0-2 gave 91.90/91.65/91.77% on 2 cores
    results, _ = train_run(["experiment=fast", "dataset=fashion_mnist"])
    assert results["epochs"] == 2 and results["test_acc"] >= 0.91, results["history"]
