"""The statistics behind the report's verdicts: Welch's t-test, its confidence interval, Holm's
correction and the seeds a difference would need.

Each arm of a sweep is a handful of seeds, with its own spread, so two arms are compared with
Welch's unequal-variance t-test: the mean difference, its 95% interval on the Welch–Satterthwaite
degrees of freedom, and the two-sided p-value (scipy's). A sweep makes several comparisons at once,
so their p-values are Holm-corrected together (it controls the chance of any false "significant" at
0.05 without assuming the tests are independent). A difference that is not significant gets the
number of seeds per arm at which a true difference of that size would be found 80% of the time.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence

ALPHA = 0.05
CONFIDENCE = 0.95
POWER = 0.80
MAX_SEEDS = 1000  # the power search stops here: beyond it the answer is "far too many"


@dataclass
class Welch:
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float  # mean_a - mean_b
    ci_low: Optional[float]  # None where no test is possible
    ci_high: Optional[float]
    df: Optional[float]
    p: Optional[float]  # two-sided, before correction
    p_holm: Optional[float] = None  # set by holm() over the sweep's comparisons
    family: int = 0  # how many comparisons that correction was over
    why_not: Optional[str] = None  # why there is no test, in words

    @property
    def tested(self) -> bool:
        return self.p is not None

    @property
    def significant(self) -> bool:
        p = self.p_holm if self.p_holm is not None else self.p
        return p is not None and p < ALPHA


def welch(a: Sequence[float], b: Sequence[float]) -> Welch:
    """Welch's t-test of mean(a) - mean(b); no test where an arm has fewer than two values or neither
    varies (the t statistic is then undefined)."""
    from scipy import stats

    n_a, n_b = len(a), len(b)
    if not n_a or not n_b:
        raise ValueError("welch() needs at least one value on each side")
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    result = Welch(n_a, n_b, mean_a, mean_b, mean_a - mean_b, None, None, None, None)
    if n_a < 2 or n_b < 2:
        result.why_not = "single run" if n_a < 2 and n_b < 2 else "single run on one side"
        return result
    var_a, var_b = statistics.variance(a), statistics.variance(b)
    se_a, se_b = var_a / n_a, var_b / n_b
    if se_a + se_b == 0:
        result.why_not = "no spread"
        return result
    se = math.sqrt(se_a + se_b)
    result.df = (se_a + se_b) ** 2 / (se_a ** 2 / (n_a - 1) + se_b ** 2 / (n_b - 1))
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, result.df) * se
    result.ci_low, result.ci_high = result.diff - half, result.diff + half
    result.p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return result


def holm(tests: Sequence[Welch]) -> None:
    """Holm's step-down correction over the tests that have a p-value, in place."""
    done = [t for t in tests if t.tested]
    running = 0.0
    for rank, test in enumerate(sorted(done, key=lambda t: t.p)):
        running = max(running, min(1.0, (len(done) - rank) * test.p))  # adjusted p-values never decrease
        test.p_holm, test.family = running, len(done)


def pooled_std(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """The two arms' common standard deviation (pooled sample variance); None with fewer than 3 values."""
    dof = len(a) + len(b) - 2
    if dof < 1:
        return None
    squares = sum((x - statistics.fmean(a)) ** 2 for x in a) + sum((x - statistics.fmean(b)) ** 2 for x in b)
    return math.sqrt(squares / dof)


def power(n: int, effect: float, alpha: float = ALPHA) -> float:
    """The chance that a two-sided two-sample t-test with n per arm finds a true standardized
    difference `effect` (difference / std): the noncentral t's mass beyond the critical values."""
    from scipy import stats

    df = 2 * n - 2
    shift = effect * math.sqrt(n / 2)
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift))


def seeds_needed(diff: float, std: Optional[float], target: float = POWER, alpha: float = ALPHA) -> Optional[int]:
    """Seeds per arm for `target` power to detect a true difference of `diff` with this std; None where
    there is nothing to detect (no difference) or no std to go on; MAX_SEEDS + 1 beyond the search."""
    if std is None or std <= 0 or diff == 0:
        return None
    from scipy import stats

    effect = abs(diff) / std
    # the normal approximation never asks for more than the t-test needs: start the search just below it
    approx = 2 * ((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target)) / effect) ** 2
    for n in range(max(2, int(approx) - 1), MAX_SEEDS + 1):
        if power(n, effect, alpha) >= target:
            return n
    return MAX_SEEDS + 1

