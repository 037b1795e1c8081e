"""cnnlab-report on sweeps written by hand (exact numbers to check) and on one real tiny sweep."""
import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from cnnlab.report.cli import make_report
from conftest import run_cli

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_run(folder, overrides, test_acc=None, status="completed", epochs=3, error=None, top5=True,
             monitor="val/loss"):
    """A run folder as cnnlab leaves it: .hydra/overrides.yaml, and results.json unless unfinished;
    monitor=None writes one as cnnlab did before results.json recorded the monitor."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if status == "unfinished":
        return folder
    if status == "failed":
        results = {"status": "failed", "error": error, "overrides": overrides}
    else:
        history = [{"epoch": e, "train/loss": 1.0 / e, "train/acc": test_acc + 0.01 * e,
                    "val/loss": 1.2 / e, "val/acc": test_acc - 0.02 + 0.01 * e, "lr": 0.01, "seconds": 1.0}
                   for e in range(1, epochs + 1)]
        results = {"status": "completed", "test_acc": test_acc, "test_loss": 0.3,
                   "best_val_acc": history[-1]["val/acc"], "best_epoch": epochs, "epochs": epochs,
                   "final_train_acc": history[-1]["train/acc"], "final_val_acc": history[-1]["val/acc"],
                   "best_val_loss": min(h["val/loss"] for h in history), "final_val_loss": history[-1]["val/loss"],
                   "params": 1234, "trainable_params": 1000, "train_seconds": 10.0, "images_per_s": 100.0,
                   "model": "lecture_cnn", "dataset": "digits", "optim": "x",
                   "seed": int(overrides[-1].split("=")[1]), "overrides": overrides, "history": history}
        if top5:
            results["test_top5_acc"] = 0.99
        if monitor:  # every epoch improves both, so either monitor picks the last
            results.update(monitor=monitor, max_val_acc=results["best_val_acc"], test_split="test",
                           val_from_test=False)
    (folder / "results.json").write_text(json.dumps(results))
    return folder


@pytest.fixture
def sweep(tmp_path):
    """optim=sgd and adam over three seeds, one failed job and one that never finished."""
    root = tmp_path / "sweep"
    for optim, accs in (("sgd", [0.80, 0.82, 0.84]), ("adam", [0.95, 0.96, 0.97])):
        for seed, acc in enumerate(accs):
            fake_run(root / f"optim={optim},seed={seed}", [f"optim={optim}", f"seed={seed}"], acc)
    fake_run(root / "optim=rmsprop,seed=0", ["optim=rmsprop", "seed=0"], status="failed",
             error="optim.lr=-1 is not allowed: optim.lr must be positive.")
    fake_run(root / "optim=adagrad,seed=0", ["optim=adagrad", "seed=0"], status="unfinished")
    return root


def table_rows(report: str) -> dict:
    """configuration label -> its cells, from report.md's table."""
    rows = {}
    for line in report.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def header(report: str) -> list:
    line = next(l for l in report.splitlines() if l.startswith("| configuration"))
    return [c.strip() for c in line.strip("|").split(" | ")][1:]


def test_seeds_grouped_as_mean_std_with_count_and_failures_shown(sweep):
    report = make_report(sweep).read_text()
    rows, columns = table_rows(report), header(report)
    assert list(rows) == ["optim=adagrad", "optim=adam", "optim=rmsprop", "optim=sgd"]  # folder order
    assert columns == ["runs", "params", "trainable", "best val acc (%)", "best epoch (by val/loss)",
                       "final train acc (%)",
                       "train−val gap (points)", "best val loss", "final val loss", "test acc (%)", "test top-5 (%)",
                       "train time (s)"]
    sgd = dict(zip(columns, rows["optim=sgd"]))
    assert sgd["runs"] == "3" and sgd["test acc (%)"] == "82.00 ± 2.00"
    assert sgd["params"] == "1,234" and sgd["trainable"] == "1,000" and sgd["best epoch (by val/loss)"] == "3"
    assert sgd["final train acc (%)"] == "85.00 ± 2.00" and sgd["best val acc (%)"] == "83.00 ± 2.00"
    assert sgd["train−val gap (points)"] == "+2.00 ± 0.00" and sgd["train time (s)"] == "10.0 ± 0.0"
    assert sgd["best val loss"] == "0.400 ± 0.000" and sgd["final val loss"] == "0.400 ± 0.000"
    assert dict(zip(columns, rows["optim=adam"]))["test acc (%)"] == "96.00 ± 1.00"
    assert rows["optim=rmsprop"][0] == "**failed**" and set(rows["optim=rmsprop"][1:]) == {"–"}
    assert rows["optim=adagrad"][0] == "**unfinished**"
    assert "`optim=rmsprop,seed=0`: **failed**: optim.lr=-1 is not allowed" in report
    assert "`optim=adagrad,seed=0`: **unfinished**" in report


def test_comparison_names_the_winner_on_validation_with_a_t_test(sweep):
    report = make_report(sweep, figures=False).read_text()
    # best val acc: adam 0.96, 0.97, 0.98 and sgd 0.81, 0.83, 0.85; Welch's df = 2.94...
    assert ("Overall by best validation accuracy: **optim=adam** won. optim=adam beats optim=sgd by 14.00 points, "
            "95% CI 9.84 to 18.16, p = 0.002 (a single comparison, so no correction): significant at 0.05. "
            "Best validation accuracy 97.00 ± 1.00% (n=3) vs 83.00 ± 2.00% (n=3); "
            "test accuracy 96.00 ± 1.00% vs 82.00 ± 2.00%.") in report
    assert "seed spread" not in report and "overlap" not in report


def test_validation_loss_that_turns_up_shows_as_final_above_best(tmp_path):
    run = fake_run(tmp_path / "s" / "a", ["optim=sgd", "seed=0"], 0.8)
    results = json.loads((run / "results.json").read_text())
    results.update(best_val_loss=0.5, final_val_loss=0.7)
    (run / "results.json").write_text(json.dumps(results))
    fake_run(tmp_path / "s" / "b", ["optim=adam", "seed=0"], 0.9)
    report = make_report(tmp_path / "s", figures=False).read_text()
    sgd = dict(zip(header(report), table_rows(report)["optim=sgd"]))
    assert sgd["best val loss"] == "0.500" and sgd["final val loss"] == "0.700"


def test_each_arm_is_set_against_the_baseline(tmp_path):
    root = tmp_path / "remedies"
    for variant, accs in (("baseline", [0.70, 0.72]), ("l2", [0.75, 0.77]), ("dropout", [0.705, 0.725])):
        for seed, acc in enumerate(accs):
            fake_run(root / f"{variant},{seed}", [f"variant={variant}", f"seed={seed}"], acc)
    report = make_report(root, figures=False).read_text()
    # three distinct pairs: l2-baseline, dropout-baseline, and the winner l2 against the runner-up dropout
    assert ("Against the reference variant=baseline: variant=l2 beats variant=baseline by 5.00 points, 95% CI "
            in report and "after Holm correction over 3 comparisons" in report)
    assert "Against the reference variant=baseline: variant=dropout beats variant=baseline by 0.50 points" in report
    assert "Against the reference variant=baseline: variant=baseline" not in report


def test_without_a_baseline_arm_the_first_configuration_is_the_reference(tmp_path):
    root = tmp_path / "optims"
    for job, (optim, accs) in enumerate((("sgd", [0.80, 0.82]), ("adam", [0.90, 0.93]), ("rmsprop", [0.85, 0.86]))):
        for seed, acc in enumerate(accs):  # the folders sort in the order the sweep ran them
            fake_run(root / f"{job},optim={optim},seed={seed}", [f"optim={optim}", f"seed={seed}"], acc)
    report = make_report(root, figures=False).read_text()
    assert "Against the reference optim=sgd: optim=adam beats optim=sgd" in report
    assert "Against the reference optim=sgd: optim=rmsprop beats optim=sgd" in report
    assert "Against the reference optim=adam" not in report


def test_a_difference_within_the_noise_is_not_significant_and_says_what_would_be(tmp_path):
    root = tmp_path / "close"
    for name, accs in (("0", [0.90, 0.94]), ("0.5", [0.91, 0.95])):
        for seed, acc in enumerate(accs):
            fake_run(root / f"d={name},s={seed}", [f"model.dropout={name}", f"seed={seed}"], acc)
    report = make_report(root, figures=False).read_text()
    assert "**model.dropout=0.5** won" in report and "not significant at 0.05" in report
    assert "a true difference of 1.00 points would need about " in report and "seeds per arm" in report


def test_two_swept_keys_compare_each_key_with_the_other_fixed(tmp_path):
    root = tmp_path / "grid"
    accs = {("sgd", "0"): 0.80, ("sgd", "0.5"): 0.85, ("adam", "0"): 0.95, ("adam", "0.5"): 0.93}
    for (optim, dropout), acc in accs.items():
        fake_run(root / f"optim={optim},model.dropout={dropout}",
                 [f"optim={optim}", f"model.dropout={dropout}", "seed=0"], acc)
    report = make_report(root, figures=False).read_text()
    assert "`optim=adam,model.dropout=0`" in report
    assert ("optim (with model.dropout=0): adam beats sgd by 15.00 points; one run each, so no test is possible "
            "(sweep seed=0,1,2 to test it). Best validation accuracy 96.00% (n=1) vs 81.00% (n=1); "
            "test accuracy 95.00% vs 80.00%.") in report
    assert "model.dropout (with optim=sgd): 0.5 beats 0" in report
    assert "model.dropout (with optim=adam): 0 beats 0.5" in report
    assert "Against the reference" not in report  # a grid without a baseline arm
    assert "one run each, so no test is possible" in report


def test_figures_are_written_and_linked(sweep):
    (sweep / "figures").mkdir()
    (sweep / "figures" / "curves_09_from_an_older_report.png").write_bytes(PNG_MAGIC)
    report = make_report(sweep).read_text()
    figures = sorted(p.name for p in (sweep / "figures").iterdir())
    assert figures == ["curves_01_optim=adam.png", "curves_02_optim=sgd.png", "val_curves.png"]
    for name in figures:
        data = (sweep / "figures" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
        assert f"](figures/{name})" in report


def fake_activations(folder, first_layer_norms):
    """activations.json as trainer.histograms writes it: two layers, epochs 0 and 1."""
    def entry(epoch, first):
        hist = {"edges": [0.0, 0.5, 1.0], "counts": [3, 7], "mean": 0.5, "std": 0.1, "zero_fraction": 0.0}
        return {"epoch": epoch, "activations": {"1": hist, "3": hist},
                "grad_norms": {"0.weight": first, "2.weight": 0.01, "4.weight": 0.5}}
    epochs = [entry(e, n) for e, n in enumerate(first_layer_norms)]
    (folder / "activations.json").write_text(json.dumps({"format": 1, "inputs": 10, "source": "val",
                                                         "layers": ["1", "3"], "epochs": epochs}))


def test_activation_histograms_and_gradient_norms(tmp_path):
    root = tmp_path / "sweep"
    for init, norms in (("normal", [(1e-8, 2e-8), (3e-8, 4e-8)]), ("he", [(0.4, 0.2), (0.6, 0.4)])):
        for seed, (before, after) in enumerate(norms):
            run = fake_run(root / f"model.init={init},seed={seed}", [f"model.init={init}", f"seed={seed}"], 0.5)
            fake_activations(run, [before, after])
    report = make_report(root).read_text()
    section = report[report.index("## Activations and gradients"):]
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ")[1:] for line in section.splitlines()
            if line.startswith("| `")}
    # first layer: the mean over the two seeds; last layer 0.5; first/last their ratio
    assert rows["model.init=normal"][:4] == ["2", "2.00e-08", "5.00e-01", "4.00e-08"]
    assert rows["model.init=he"][:4] == ["2", "5.00e-01", "5.00e-01", "1.00e+00"]
    assert rows["model.init=he"][4] == "3.00e-01"  # after training: the last epoch's norms
    for name in ("activations_before_training.png", "activations_after_training.png", "grad_norms.png"):
        data = (root / "figures" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000 and f"](figures/{name})" in section


def test_no_activation_section_without_histograms(sweep):
    report = make_report(sweep).read_text()
    assert "Activations and gradients" not in report
    assert not (sweep / "figures" / "grad_norms.png").exists()


def test_single_run_folder_and_nested_sweeps(tmp_path):
    single = fake_run(tmp_path / "one", ["seed=0"], 0.9)
    assert "| `lecture_cnn / digits / x` | 1 |" in make_report(single, figures=False).read_text()
    parent = tmp_path / "multirun"
    fake_run(parent / "day1" / "10-00" / "optim=sgd", ["optim=sgd", "seed=0"], 0.8)
    fake_run(parent / "day1" / "11-00" / "optim=sgd", ["optim=sgd", "seed=1"], 0.9)
    fake_run(parent / "day2" / "09-00" / "optim=adam", ["optim=adam", "seed=0"], 0.95)
    rows = table_rows(make_report(parent, figures=False).read_text())
    assert rows["optim=sgd"][0] == "2" and rows["optim=adam"][0] == "1"


def test_top5_column_only_where_it_applies(tmp_path):
    fake_run(tmp_path / "s" / "a", ["optim=sgd", "seed=0"], 0.8, top5=False)
    fake_run(tmp_path / "s" / "b", ["optim=adam", "seed=0"], 0.9, top5=False)
    assert "top-5" not in make_report(tmp_path / "s", figures=False).read_text()


def test_console_script_is_registered():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("cnnlab-report") == "cnnlab.report.cli:main"


@pytest.mark.parametrize("make, expected", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "found no runs"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "is a file"),
])
def test_bad_input_is_one_paragraph_and_a_nonzero_exit(tmp_path, make, expected):
    target = make(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "cnnlab.report.cli", str(target)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and expected in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.slow
def test_report_on_a_real_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    tiny = ["trainer.max_epochs=1", "dataset.train_size=300", "trainer.summary=false", "trainer.progress=false",
            "trainer.diagnostics=false"]
    proc = run_cli(["-m", "optim=sgd,adam", *tiny, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "cnnlab.report.cli", str(sweep)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = (sweep / "report.md").read_text()
    rows = table_rows(report)
    assert set(rows) == {"optim=sgd", "optim=adam"} and all(r[0] == "1" for r in rows.values())
    params = json.loads((sweep / "optim=adam" / "results.json").read_text())["params"]
    assert f"| {params:,} |" in report and "won." in report and "no test is possible" in report
    assert (sweep / "report.csv").is_file()
    assert (sweep / "figures" / "val_curves.png").stat().st_size > 5000
    assert "optim=adam" in proc.stdout and "Wrote" in proc.stdout
