"""What the report reads: the monitor and split keys (and older runs without them), results.json files
it cannot use, failed attempts beside a completed run, several folders at once, report.csv, per class."""
import csv
import json
from types import SimpleNamespace

import pytest

from cnnlab.report.cli import ReportError, main, make_report
from test_report import header, table_rows


def write_run(folder, overrides, val=0.8, test=0.78, **keys):
    """A completed run's results.json with the current keys; keys override or (value None) remove them."""
    folder.mkdir(parents=True)
    history = [{"epoch": e, "train/loss": 1.0 / e, "train/acc": 0.5 + 0.1 * e, "val/loss": loss,
                "val/acc": acc} for e, loss, acc in ((1, 0.9, 0.6), (2, 0.5, val), (3, 0.7, val + 0.05))]
    results = {"status": "completed", "monitor": "val/loss", "best_epoch": 2, "best_val_acc": val,
               "best_val_loss": 0.5, "max_val_acc": val + 0.05, "final_val_loss": 0.7, "test_acc": test,
               "test_split": "test", "val_from_test": False, "final_train_acc": 0.8, "final_val_acc": val + 0.05,
               "params": 10, "trainable_params": 10, "train_seconds": 1.0, "overrides": overrides,
               "history": history, "seed": int(overrides[-1].split("=")[1])}
    results.update(keys)
    results = {k: v for k, v in results.items() if v is not None}
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def two_arms(root, **keys):
    write_run(root / "0", ["optim=sgd", "seed=0"], 0.80, 0.79, **keys)
    write_run(root / "1", ["optim=adam", "seed=0"], 0.90, 0.88, **keys)
    return root


def columns_of(report, label):
    return dict(zip(header(report), table_rows(report)[label]))


@pytest.fixture
def report_cli(capsys):
    """cnnlab-report's main() in this process: (exit code, stdout, stderr), as a shell would see them."""
    def run(*args):
        capsys.readouterr()
        try:
            main(["--no-figures", *map(str, args)])
            code = 0
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return run


# ---------------------------------------------------------------- the monitor and the splits
def test_best_columns_follow_the_monitor(tmp_path):
    report = make_report(two_arms(tmp_path / "s"), figures=False).read_text()
    sgd = columns_of(report, "optim=sgd")
    assert sgd["best epoch (by val/loss)"] == "2" and sgd["best val acc (%)"] == "80.00"
    assert sgd["best val loss"] == "0.500" and sgd["max val acc (%)"] == "85.00"
    assert "the epoch that `trainer.monitor` (`val/loss`) chose" in report and "max val acc is the highest" in report
    acc = make_report(two_arms(tmp_path / "a", monitor="val/acc", max_val_acc=None, best_epoch=3), figures=False)
    assert "best epoch (by val/acc)" in acc.read_text()


def test_mixed_monitors_are_named_per_run(tmp_path):
    write_run(tmp_path / "0", ["trainer.monitor=val/loss", "seed=0"])
    write_run(tmp_path / "1", ["trainer.monitor=val/acc", "seed=0"], monitor="val/acc")
    assert "best epoch (by each run's monitor)" in make_report(tmp_path, figures=False).read_text()


def test_older_runs_without_the_monitor_chose_on_val_acc(tmp_path):
    """Before trainer.monitor, best_epoch was the highest val/acc and best_val_loss the lowest of any epoch."""
    root = two_arms(tmp_path / "s", monitor=None, max_val_acc=None, test_split=None, val_from_test=None,
                    best_epoch=3, best_val_acc=0.95)
    report = make_report(root, figures=False).read_text()
    sgd = columns_of(report, "optim=sgd")
    assert sgd["best epoch (by val/acc)"] == "3" and sgd["best val loss"] == "0.700"  # epoch 3's, not the min
    assert "max val acc (%)" not in header(report)
    assert ("These runs were written before results.json recorded the monitor: their best epoch is the one of "
            "highest val acc") in report and "the epoch that `trainer.monitor`" not in report


def test_no_test_split_heads_the_test_columns_as_validation(tmp_path):
    report = make_report(two_arms(tmp_path / "s", test_split="val", test_top5_acc=0.99), figures=False).read_text()
    columns = header(report)
    assert "val-as-test acc (%)" in columns and "val-as-test top-5 (%)" in columns and "test acc (%)" not in columns
    assert "These runs' data has no test split" in report
    assert "val-as-test accuracy 88.00% vs 79.00%" in report  # beside the verdict, named as what it is


def test_a_run_without_a_test_split_among_others_is_marked(tmp_path):
    write_run(tmp_path / "0", ["dataset=digits", "seed=0"])
    write_run(tmp_path / "1", ["dataset=folder", "seed=0"], test_split="val")
    report = make_report(tmp_path, figures=False).read_text()
    rows = table_rows(report)
    assert "dataset=folder` †" in rows and "dataset=digits" in rows and "test acc (%)" in header(report)
    assert "† no test split" in report


def test_validated_on_test_is_marked(tmp_path):
    write_run(tmp_path / "0", ["optim=sgd", "seed=0"], val_from_test=True)
    write_run(tmp_path / "1", ["optim=adam", "seed=0"])
    report = make_report(tmp_path, figures=False).read_text()
    assert "optim=sgd` ‡" in table_rows(report) and "optim=adam" in table_rows(report)
    assert "‡ validated on the test split (`dataset.val_from_test=true`)" in report


# ---------------------------------------------------------------- files the report cannot use
@pytest.mark.parametrize("content, phrase", [
    ("[1, 2, 3]", "holds a list, where cnnlab writes an object"),
    ('"done"', "holds a string"),
    ("null", "holds null"),
    ('{"test_acc": 0.9', "is not valid JSON"),
    (b"\xff\xfe\x00junk", "is not text"),
])
def test_a_bad_results_json_is_one_message_and_the_rest_is_reported(report_cli, tmp_path, content, phrase):
    two_arms(tmp_path / "s")
    bad = tmp_path / "s" / "2"
    bad.mkdir()
    (bad / "results.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    proc = report_cli(tmp_path / "s")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and f"{bad}: results.json {phrase}" in proc.stderr
    report = (tmp_path / "s" / "report.md").read_text()
    assert f"- `2`: **unreadable**: results.json {phrase}" in report and "**optim=adam** won" in report


def test_only_bad_results_is_an_error_naming_each_file(report_cli, tmp_path):
    for name, content in (("a", "[]"), ("b", "{")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(content)
    proc = report_cli(tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "no run could be read" in proc.stderr and "holds a list" in proc.stderr and "not valid JSON" in proc.stderr


def test_failed_attempts_are_listed_below_a_completed_result_that_stays_untouched(report_cli, tmp_path):
    root = two_arms(tmp_path / "s")
    attempts = root / "0" / "attempts"
    attempts.mkdir()
    (attempts / "2026-12-01T10-00-00.json").write_text(json.dumps({
        "status": "failed", "error": "model.dropout=1.5 is not allowed: it must be below 1.",
        "overrides": ["optim=sgd", "seed=0", "resume=true", "model.dropout=1.5"],
        "finished_at": "2026-12-01T10:00:00"}))
    (attempts / "2026-12-01T09-00-00.json").write_text(json.dumps({
        "status": "interrupted", "error": "stopped by Ctrl-C", "overrides": ["optim=sgd", "seed=0", "resume=true"],
        "finished_at": "2026-12-01T09:00:00"}))
    (attempts / "broken.json").write_text("[")
    before = (root / "0" / "results.json").read_bytes()
    proc = report_cli(root)
    assert proc.returncode == 0 and "attempts/broken.json: broken.json is not valid JSON" in proc.stderr
    report = (root / "report.md").read_text()
    assert (root / "0" / "results.json").read_bytes() == before
    assert table_rows(report)["optim=sgd"][0] == "1"  # the completed result counts
    listed = report[report.index("Failed attempts"):report.index("## Comparisons")]
    assert listed.index("**interrupted** at 2026-12-01T09:00:00") < listed.index("**failed** at 2026-12-01T10:00:00")
    assert ("- `0/attempts/2026-12-01T10-00-00.json`: **failed** at 2026-12-01T10:00:00 "
            "(`optim=sgd seed=0 resume=true model.dropout=1.5`): model.dropout=1.5 is not allowed") in listed
    assert "`0/attempts/broken.json`: **unreadable**" in listed
    assert "Runs that did not complete" not in report


def test_a_run_with_only_failed_attempts_is_failed(tmp_path):
    two_arms(tmp_path / "s")
    (tmp_path / "s" / "2" / "attempts").mkdir(parents=True)
    (tmp_path / "s" / "2" / "attempts" / "a.json").write_text(json.dumps({
        "status": "failed", "error": "CUDA out of memory", "overrides": ["optim=rmsprop", "seed=0"],
        "finished_at": "2026-12-01T10:00:00"}))
    report = make_report(tmp_path / "s", figures=False).read_text()
    assert table_rows(report)["optim=rmsprop"][0] == "**failed**"
    assert "- `2`: **failed**: CUDA out of memory" in report


# ---------------------------------------------------------------- several folders, --out, report.csv
def test_several_folders_and_a_quoted_glob_into_out(report_cli, tmp_path, monkeypatch):
    write_run(tmp_path / "multirun" / "day1" / "sgd", ["optim=sgd", "seed=0"], 0.80)
    write_run(tmp_path / "multirun" / "day1" / "sgd1", ["optim=sgd", "seed=1"], 0.82)
    write_run(tmp_path / "multirun" / "day2" / "adam", ["optim=adam", "seed=0"], 0.90)
    write_run(tmp_path / "multirun" / "day2" / "adam1", ["optim=adam", "seed=1"], 0.93)
    proc = report_cli(tmp_path / "multirun" / "day1", tmp_path / "multirun" / "day2", "--out", tmp_path / "rep")
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "rep" / "report.md").read_text()
    rows = table_rows(report)
    assert rows["optim=sgd"][0] == "2" and rows["optim=adam"][0] == "2" and "95% CI" in report
    assert "# Report: day1, day2" in report and "--out" in report
    assert not (tmp_path / "multirun" / "day1" / "report.md").exists()
    # a quoted glob, the same folder twice (each run counted once), written into the current folder
    monkeypatch.chdir(tmp_path)
    proc = report_cli(str(tmp_path / "multirun" / "day*"), tmp_path / "multirun" / "day1")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report.md").read_text().count("| `optim=sgd` | 2 |") == 1
    assert (tmp_path / "report.csv").is_file()
    # one folder: the report goes into it
    assert report_cli(tmp_path / "multirun" / "day2").returncode == 0
    assert (tmp_path / "multirun" / "day2" / "report.md").is_file()


def test_a_glob_that_matches_nothing_is_refused(report_cli, tmp_path):
    with pytest.raises(ReportError, match="nothing matches"):
        make_report([str(tmp_path / "nope*")], figures=False)
    proc = report_cli(str(tmp_path / "nope*"))
    assert proc.returncode == 2 and "nothing matches" in proc.stderr and "Traceback" not in proc.stderr


def test_report_csv_has_a_row_per_run_with_every_override_and_metric(tmp_path):
    root = tmp_path / "s"
    write_run(root / "0", ["optim=sgd", "model.dropout=0.5", "seed=0"], 0.80, 0.79,
              per_class_acc={"cat": 0.7, "dog": 0.9}, most_confused=[["cat", "dog", 3]])
    write_run(root / "1", ["optim=adam", "model.dropout=0.5", "seed=0"], 0.90, 0.88)
    (root / "2").mkdir()
    (root / "2" / "results.json").write_text(json.dumps({"status": "failed", "error": "NaN loss",
                                                         "overrides": ["optim=rmsprop", "model.dropout=0.5", "seed=0"]}))
    make_report(root, figures=False)
    with open(root / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["run"] for r in rows] == ["0", "1", "2"]
    first = rows[0]
    assert first["configuration"] == "optim=sgd" and first["status"] == "completed"
    assert first["optim"] == "sgd" and first["model.dropout"] == "0.5" and first["seed"] == "0"
    assert float(first["best_val_acc"]) == 0.80 and float(first["test_acc"]) == 0.79
    assert first["monitor"] == "val/loss" and first["best_epoch"] == "2" and float(first["max_val_acc"]) == pytest.approx(0.85)
    assert float(first["per_class_acc/cat"]) == 0.7 and json.loads(first["most_confused"]) == [["cat", "dog", 3]]
    assert rows[1]["per_class_acc/cat"] == "" and "history" not in first
    assert rows[2]["status"] == "failed" and rows[2]["error"] == "NaN loss" and rows[2]["test_acc"] == ""


# ---------------------------------------------------------------- per class
def test_per_class_accuracy_and_most_confused_per_configuration(tmp_path):
    root = tmp_path / "s"
    write_run(root / "0", ["optim=sgd", "seed=0"], per_class_acc={"cat": 0.6, "dog": 0.9},
              most_confused=[["cat", "dog", 5], ["dog", "cat", 1]])
    write_run(root / "1", ["optim=sgd", "seed=1"], per_class_acc={"cat": 0.7, "dog": 0.8},
              most_confused=[["cat", "dog", 4], ["dog", "cat", 3]])
    write_run(root / "2", ["optim=adam", "seed=0"], per_class_acc={"cat": 0.95, "dog": 0.97},
              most_confused=[["dog", "cat", 2]])
    report = make_report(root, figures=False).read_text()
    section = report[report.index("## Per class"):]
    assert "| class | `optim=sgd` | `optim=adam` |" in section
    assert "| cat | 65.00 | 95.00 |" in section and "| dog | 85.00 | 97.00 |" in section
    assert "- `optim=sgd` (2 runs): cat → dog: 9, dog → cat: 4" in section
    assert "- `optim=adam` (1 run): dog → cat: 2" in section


def test_many_classes_list_each_configurations_weakest(tmp_path):
    accs = {f"c{i:02d}": 0.5 + i / 100 for i in range(30)}
    write_run(tmp_path / "0", ["optim=sgd", "seed=0"], per_class_acc=accs)
    write_run(tmp_path / "1", ["optim=adam", "seed=0"])
    report = make_report(tmp_path, figures=False).read_text()
    assert ("- `optim=sgd`, its 10 weakest of 30 classes: c00 50.00, c01 51.00, c02 52.00, c03 53.00, c04 54.00, "
            "c05 55.00, c06 56.00, c07 57.00, c08 58.00, c09 59.00") in report
    assert "optim=adam`, its" not in report


def test_no_per_class_section_without_the_keys(tmp_path):
    assert "## Per class" not in make_report(two_arms(tmp_path / "s"), figures=False).read_text()
