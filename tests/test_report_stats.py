"""The report's verdicts checked against scipy on a generated sweep: a clear win, a tie, a difference
within the noise, a single run, an arm with a failed seed and an arm whose every seed failed."""
import json
import math

import numpy as np
import pytest
from scipy import stats as sp

from cnnlab.report.cli import make_report
from cnnlab.report.collect import find_runs
from cnnlab.report.compare import verdicts
from cnnlab.report.group import group_runs
from cnnlab.report.stats import MAX_SEEDS, holm, pooled_std, power, seeds_needed, welch

# variant -> (best_val_acc per seed, test_acc per seed); None is a failed seed
ARMS = {
    "baseline": ([0.70, 0.72, 0.71, 0.69, 0.73], [0.69, 0.71, 0.70, 0.68, 0.72]),
    "dropout": ([0.78, 0.80, 0.79, 0.81, 0.77], [0.77, 0.79, 0.78, 0.80, 0.76]),  # a clear win
    "l2": ([0.71, 0.70, 0.72, 0.73, 0.69], [0.70, 0.69, 0.71, 0.72, 0.68]),  # the same mean: a tie
    "noisy": ([0.70, 0.76, 0.68, 0.74, 0.72], [0.69, 0.75, 0.67, 0.73, 0.71]),  # +1 point, within the noise
    "single": ([0.745], [0.99]),  # one run; the best test accuracy of all, which must choose nothing
    "augment": ([0.745, 0.75, 0.765, None], [0.73, 0.74, 0.75, None]),  # one seed failed
    "broken": ([None, None], [None, None]),  # every seed failed
}


def write_run(folder, overrides, val=None, test=None):
    """results.json as cnnlab writes it (the keys the report reads), or a failed one where val is None."""
    folder.mkdir(parents=True)
    if val is None:
        results = {"status": "failed", "error": "training diverged: the loss is NaN", "overrides": overrides}
    else:
        results = {"status": "completed", "monitor": "val/loss", "best_epoch": 4, "best_val_acc": val,
                   "max_val_acc": val, "best_val_loss": 0.5, "final_val_loss": 0.6, "test_acc": test,
                   "test_split": "test", "val_from_test": False, "final_train_acc": val + 0.05,
                   "final_val_acc": val, "params": 100, "trainable_params": 100, "train_seconds": 1.0,
                   "overrides": overrides, "history": []}
    (folder / "results.json").write_text(json.dumps(results))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("remedies")
    for job, (variant, (vals, tests)) in enumerate(ARMS.items()):
        for seed, (val, test) in enumerate(zip(vals, tests)):
            write_run(root / f"{job:02d}_variant={variant},seed={seed}", [f"variant={variant}", f"seed={seed}"],
                      val, test)
    return root


def completed(variant):
    return [v for v in ARMS[variant][0] if v is not None]


def by_pair(sweep):
    found = {}
    for v in verdicts(group_runs(find_runs(sweep))):
        found[(v.kind, v.a.settings["variant"], v.b.settings["variant"])] = v
    return found


def expected_holm(p_values):
    """Holm's adjusted p-values, written out as the textbook states them."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    m, adjusted, running = len(p_values), [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p_values[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def test_each_arm_against_the_baseline_matches_scipy_with_holm_over_the_sweep(sweep):
    found = by_pair(sweep)
    tested = ["dropout", "l2", "noisy", "augment"]
    # the family: those four against the baseline, and the winner against the runner-up (dropout, augment)
    pairs = [(arm, "baseline") for arm in tested] + [("dropout", "augment")]
    raw = [sp.ttest_ind(completed(a), completed(b), equal_var=False) for a, b in pairs]
    adjusted = expected_holm([r.pvalue for r in raw])
    for (a, b), result, p_holm in zip(pairs, raw, adjusted):
        kind = "overall" if b == "augment" else "reference"
        t = found[(kind, a, b)].test
        low, high = result.confidence_interval(0.95)
        assert t.diff == pytest.approx(np.mean(completed(a)) - np.mean(completed(b)), abs=1e-12)
        assert (t.ci_low, t.ci_high) == (pytest.approx(low, abs=1e-10), pytest.approx(high, abs=1e-10))
        assert t.df == pytest.approx(result.df, rel=1e-10)
        assert t.p == pytest.approx(result.pvalue, rel=1e-10)
        assert t.p_holm == pytest.approx(p_holm, rel=1e-10) and t.family == 5
    assert found[("reference", "augment", "baseline")].test.n_a == 3  # the failed seed is not a value
    assert not any("broken" in key for key in found)  # no completed run: nothing to compare


def test_the_winner_is_chosen_on_validation_not_test(sweep):
    overall = [v for v in by_pair(sweep).values() if v.kind == "overall"]
    assert len(overall) == 1 and overall[0].a.settings["variant"] == "dropout"
    assert overall[0].b.settings["variant"] == "augment"  # single has the best test accuracy, not validation


def test_the_sentences(sweep):
    report = make_report(sweep, figures=False).read_text()
    found = by_pair(sweep)
    win = found[("reference", "dropout", "baseline")].test
    assert (f"Against the reference variant=baseline: variant=dropout beats variant=baseline by 8.00 points, "
            f"95% CI {100 * win.ci_low:.2f} to {100 * win.ci_high:.2f}, p < 0.001 after Holm correction over 5 "
            "comparisons: significant at 0.05. Best validation accuracy 79.00 ± 1.58% (n=5) vs 71.00 ± 1.58% "
            "(n=5); test accuracy 78.00 ± 1.58% vs 70.00 ± 1.58%; final validation loss 0.600 vs 0.600.") in report
    tie = found[("reference", "l2", "baseline")].test
    assert tie.p == pytest.approx(1.0) and tie.p_holm == pytest.approx(1.0)
    assert ("variant=l2 ties with variant=baseline (difference 0.00 points), 95% CI "
            f"{100 * tie.ci_low:.2f} to {100 * tie.ci_high:.2f}, p = 1.000 after Holm correction over 5 comparisons: "
            "not significant at 0.05; no number of seeds makes a zero difference significant.") in report
    assert ("variant=single beats variant=baseline by 3.50 points; variant=single has a single run, so no test is "
            "possible (give it more seeds)") in report
    noisy = found[("reference", "noisy", "baseline")]
    std = pooled_std(completed("noisy"), completed("baseline"))
    assert std == pytest.approx(math.sqrt((np.var(completed("noisy"), ddof=1) + np.var(completed("baseline"), ddof=1)) / 2))
    assert noisy.seeds == seeds_needed(0.01, std) and noisy.seeds > 5
    assert noisy.seeds_corrected == seeds_needed(0.01, std, alpha=0.05 / 5) > noisy.seeds
    assert (f"variant=noisy beats variant=baseline by 1.00 points, 95% CI {100 * noisy.test.ci_low:.2f} to "
            f"{100 * noisy.test.ci_high:.2f}, p = {noisy.test.p_holm:.3f} after Holm correction over 5 comparisons: "
            f"not significant at 0.05; a true difference of 1.00 points would need about {noisy.seeds} seeds per "
            f"arm to be found with 80% power at two-sided 0.05 (about {noisy.seeds_corrected} seeds at 0.05/5, "
            "allowing for the correction over 5 comparisons).") in report
    assert "| `variant=augment` | 3 of 4 (1 failed) |" in report and "| `variant=broken` | 0 of 2 (2 failed) |" in report
    assert "seed spread" not in report


def test_one_run_per_arm_says_no_test_is_possible(tmp_path):
    for job, (variant, acc) in enumerate((("baseline", 0.70), ("dropout", 0.75))):
        write_run(tmp_path / f"{job}_{variant}", [f"variant={variant}", "seed=0"], acc, acc)
    report = make_report(tmp_path, figures=False).read_text()
    assert ("**variant=dropout** won. variant=dropout beats variant=baseline by 5.00 points; one run each, so no "
            "test is possible (sweep seed=0,1,2 to test it).") in report
    assert "p = " not in report and "CI" not in report


@pytest.mark.parametrize("n", [2, 3, 5, 10, 40])
@pytest.mark.parametrize("effect", [0.3, 1.0, 2.5])
def test_power_is_the_noncentral_t_mass_beyond_the_critical_values(n, effect):
    df, shift = 2 * n - 2, effect * math.sqrt(n / 2)
    critical = sp.t.ppf(0.975, df)
    expected = 1 - sp.nct.cdf(critical, df, shift) + sp.nct.cdf(-critical, df, shift)
    assert power(n, effect) == pytest.approx(expected, rel=1e-9)
    # and a simulation agrees: the share of equal-variance t-tests that reject at 0.05
    rng = np.random.default_rng(n)
    a, b = rng.normal(effect, 1, (4000, n)), rng.normal(0, 1, (4000, n))
    simulated = np.mean(sp.ttest_ind(a, b, axis=1).pvalue < 0.05)
    assert simulated == pytest.approx(expected, abs=0.03)


@pytest.mark.parametrize("diff, std", [(0.01, 0.02), (0.005, 0.02), (0.03, 0.01), (0.02, 0.02)])
def test_seeds_needed_is_the_smallest_n_with_80_percent_power(diff, std):
    n = seeds_needed(diff, std)
    assert power(n, diff / std) >= 0.8 and (n == 2 or power(n - 1, diff / std) < 0.8)
    normal = 2 * ((sp.norm.ppf(0.975) + sp.norm.ppf(0.8)) * std / diff) ** 2  # the textbook approximation
    assert normal <= n <= normal + 3


def test_seeds_needed_where_there_is_nothing_to_find():
    assert seeds_needed(0.0, 0.01) is None and seeds_needed(0.01, None) is None and seeds_needed(0.01, 0.0) is None
    assert seeds_needed(1e-4, 0.1) == MAX_SEEDS + 1


def test_welch_without_enough_runs_or_spread_tests_nothing():
    assert welch([0.7], [0.8]).why_not == "single run" and not welch([0.7], [0.8]).tested
    assert welch([0.7, 0.72], [0.8]).why_not == "single run on one side"
    same = welch([0.7, 0.7], [0.8, 0.8])
    assert same.why_not == "no spread" and same.p is None and same.diff == pytest.approx(-0.1)


def test_holm_leaves_untested_comparisons_out_of_the_count():
    tests = [welch([0.7, 0.72, 0.71], [0.8, 0.82, 0.81]), welch([0.7], [0.8]), welch([0.7, 0.75], [0.71, 0.73])]
    holm(tests)
    assert tests[1].p_holm is None and tests[0].family == tests[2].family == 2
    assert [tests[0].p_holm, tests[2].p_holm] == pytest.approx(expected_holm([tests[0].p, tests[2].p]))


def test_a_reference_arm_without_a_completed_run_is_named(tmp_path):
    write_run(tmp_path / "0_baseline", ["variant=baseline", "seed=0"])
    for job, variant in enumerate(("l2", "dropout", "dropout"), 1):
        write_run(tmp_path / f"{job}_{variant}", [f"variant={variant}", f"seed={job}"], 0.7 + job / 100, 0.7)
    write_run(tmp_path / "4_augment", ["variant=augment", "seed=0"], 0.6, 0.6)
    report = make_report(tmp_path, figures=False).read_text()
    assert ("The reference arm variant=baseline has no completed run with a validation accuracy: the others are "
            "compared with variant=l2 instead.") in report


def test_equal_means_have_no_overall_winner(tmp_path):
    for job, (variant, vals) in enumerate((("a", [0.70, 0.72]), ("b", [0.72, 0.70]))):
        for seed, val in enumerate(vals):
            write_run(tmp_path / f"{job}_{seed}", [f"variant={variant}", f"seed={seed}"], val, val)
    report = make_report(tmp_path, figures=False).read_text()
    assert "Overall by best validation accuracy: no winner. variant=a ties with variant=b" in report
