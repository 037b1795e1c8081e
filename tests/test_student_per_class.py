"""results.json's per_class_acc and most_confused: where the model goes wrong, per class."""
import json

import pytest
import torch

from cnnlab.diagnostics import Diagnosis, confusion_matrix


def test_summary_reads_accuracy_per_class_and_the_worst_pairs_off_the_confusion_matrix():
    truth = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    predicted = torch.tensor([0, 0, 1, 2, 1, 1, 1, 0, 0, 0, 2, 1])
    confusion = confusion_matrix(truth, predicted, 4)
    summary = Diagnosis(["cat", "dog", "bird", "fish"], truth, predicted, torch.ones(12), confusion).summary()
    assert summary["per_class_acc"] == {"cat": 0.5, "dog": 1.0, "bird": 0.2, "fish": None}
    assert summary["most_confused"] == [["bird", "cat", 3], ["cat", "dog", 1], ["cat", "bird", 1],
                                        ["bird", "dog", 1]]


@pytest.mark.parametrize("diagnostics", ["true", "false"])
def test_every_run_writes_them_from_the_test_split(train_run, diagnostics):
    results, run_dir = train_run(["trainer.max_epochs=1", "dataset.train_size=300", "trainer.num_threads=1",
                                  f"trainer.diagnostics={diagnostics}"])
    saved = json.loads((run_dir / "results.json").read_text())
    per_class, pairs = saved["per_class_acc"], saved["most_confused"]
    assert list(per_class) == [str(d) for d in range(10)]
    # weighted by each class's test images (digits: 36 of most classes), they give the test accuracy
    counts = [0] * 10
    from cnnlab.data.sources import load_source
    from tests.conftest import compose_config
    from cnnlab.config import default_data_dir

    test_y = load_source(compose_config([]).dataset, default_data_dir()).test_y
    for label in test_y.tolist():
        counts[label] += 1
    weighted = sum(per_class[str(k)] * counts[k] for k in range(10)) / sum(counts)
    assert weighted == pytest.approx(saved["test_acc"], abs=1e-9)
    assert pairs and all(t != p and n >= 1 for t, p, n in pairs)
    assert [n for _, _, n in pairs] == sorted((n for _, _, n in pairs), reverse=True)
    assert sum(n for _, _, n in pairs) <= round((1 - saved["test_acc"]) * sum(counts))
    assert (run_dir / "confusion_matrix.png").exists() == (diagnostics == "true")
