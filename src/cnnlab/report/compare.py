"""The report's verdicts: which configuration won, by how much, and whether a t-test says so.

Everything is chosen on the selection metric, the best validation accuracy (results.json
`best_val_acc`, from the epoch `trainer.monitor` chose), never on the test set; test accuracy is
reported beside it. The comparisons made for one report are:
- every arm against the sweep's reference arm (`baseline`, else `scratch`, else the first configuration),
- the overall winner against the runner-up,
- with several swept keys, each key's best value against its second with the other keys held fixed.
Each distinct pair is one Welch t-test (stats.py), and all of them are Holm-corrected together.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, List, Optional

from cnnlab.report.group import Configuration, Stat
from cnnlab.report.stats import ALPHA, MAX_SEEDS, POWER, Welch, holm, pooled_std, seeds_needed, welch

SELECTION = "best_val_acc"  # what winners are picked on
BESIDE = "test_acc"  # reported next to it, never used to choose
METRIC_NAMES = {"test_acc": "test accuracy", "best_val_acc": "best validation accuracy"}
# The arm a comparison preset measures the others against (conf/variant/baseline.yaml, scratch.yaml)
REFERENCE_VALUES = ("baseline", "scratch")


@dataclass
class Verdict:
    kind: str  # "overall", "reference" or "within"
    a: Configuration
    b: Configuration
    a_name: str
    b_name: str
    context: str  # "" or the key and the values held fixed
    test: Welch  # of a minus b
    seeds: Optional[int] = None  # seeds per arm for 80% power at 0.05, where not significant
    seeds_corrected: Optional[int] = None  # the same at 0.05 / comparisons, what Holm asks of its first test


def reference_arm(configs: List[Configuration]) -> Optional[Configuration]:
    """The configuration with a `baseline` value, else one with `scratch`, else the first."""
    for value in REFERENCE_VALUES:
        for config in configs:
            if value in config.settings.values():
                return config
    return configs[0] if configs else None


def verdicts(configs: List[Configuration]) -> List[Verdict]:
    scored = [c for c in configs if c.values(SELECTION)]
    if len(scored) < 2:
        return []
    wanted: List[tuple] = []  # (kind, a, b, a_name, b_name, context)
    ranked = sorted(scored, key=lambda c: -c.stat(SELECTION).mean)  # stable: ties keep the sweep's order
    wanted.append(("overall", ranked[0], ranked[1], ranked[0].label, ranked[1].label, ""))
    reference = reference_arm(scored)
    keys = list(scored[0].settings)
    if len(keys) > 1 and not any(v in reference.settings.values() for v in REFERENCE_VALUES):
        reference = None  # a grid without a baseline arm: the held-fixed lines below compare it
    for config in scored:
        if reference is not None and config is not reference and len(scored) > 2:  # with two, the overall line is it
            wanted.append(("reference", config, reference, config.label, reference.label, ""))
    if len(keys) > 1:
        for key in keys:
            for fixed, members in _hold_others_fixed(scored, key).items():
                if len(members) > 1:
                    first, second = sorted(members, key=lambda c: -c.stat(SELECTION).mean)[:2]
                    context = f"{key} (with {', '.join(f'{k}={v}' for k, v in fixed)})"
                    wanted.append(("within", first, second, first.settings[key], second.settings[key], context))
    # one test per distinct pair, whichever way round a line reads it
    tests: Dict[frozenset, tuple] = {}
    for _, a, b, *_ in wanted:
        pair = frozenset((id(a), id(b)))
        if pair not in tests:
            tests[pair] = (a, welch(a.values(SELECTION), b.values(SELECTION)))
    holm([t for _, t in tests.values()])
    out = []
    for kind, a, b, a_name, b_name, context in wanted:
        first, test = tests[frozenset((id(a), id(b)))]
        test = test if first is a else _flipped(test)
        seeds = corrected = None
        if test.tested and not test.significant:
            std = pooled_std(a.values(SELECTION), b.values(SELECTION))
            seeds = seeds_needed(test.diff, std)
            if test.family > 1:
                corrected = seeds_needed(test.diff, std, alpha=ALPHA / test.family)
        out.append(Verdict(kind, a, b, a_name, b_name, context, test, seeds, corrected))
    return out


def comparison_lines(configs: List[Configuration], beside: str = "test accuracy") -> List[str]:
    found = verdicts(configs)
    lines = [verdict_line(v, beside) for v in found]
    meant = next((c for value in REFERENCE_VALUES for c in configs if value in c.settings.values()), None)
    used = next((v.b for v in found if v.kind == "reference"), None)
    if meant is not None and not meant.values(SELECTION) and found:
        instead = f"the others are compared with {used.label} instead" if used else "it is left out"
        lines.insert(0, f"The reference arm {meant.label} has no completed run with a validation accuracy: {instead}.")
    return lines


def verdict_line(v: Verdict, beside: str = "test accuracy") -> str:
    means = f"{METRIC_NAMES[SELECTION]} {_pct(v.a.stat(SELECTION))} vs {_pct(v.b.stat(SELECTION))}"
    ta, tb = v.a.stat(BESIDE), v.b.stat(BESIDE)
    if ta and tb:
        means += f"; {beside} {_pct(ta, n=False)} vs {_pct(tb, n=False)}"
    la, lb = v.a.stat("final_val_loss"), v.b.stat("final_val_loss")
    if v.kind == "reference" and la and lb:  # where overfitting shows first
        means += f"; final validation loss {la.mean:.3f} vs {lb.mean:.3f}"
    body = f"{sentence(v)}. {means[0].upper()}{means[1:]}."
    if v.kind == "overall":
        if round(100 * v.test.diff, 2) == 0:
            return f"Overall by {METRIC_NAMES[SELECTION]}: no winner. {body}"
        return f"Overall by {METRIC_NAMES[SELECTION]}: **{v.a_name}** won. {body}"
    if v.kind == "within":
        return f"{v.context}: {body}"
    return f"Against the reference {v.b_name}: {body}"


def sentence(v: Verdict) -> str:
    """'dropout beats baseline by 2.10 points, 95% CI 0.40 to 3.80, p = 0.021 after Holm correction over
    6 comparisons: significant at 0.05', or why there is no test, or what a test would need."""
    t = v.test
    points = 100 * abs(t.diff)
    if round(points, 2) == 0:
        text = f"{v.a_name} ties with {v.b_name} (difference {100 * t.diff:.2f} points)"
    else:
        text = f"{v.a_name} {'beats' if t.diff > 0 else 'trails'} {v.b_name} by {points:.2f} points"
    if not t.tested:
        if t.why_not == "single run":
            return text + "; one run each, so no test is possible (sweep seed=0,1,2 to test it)"
        if t.why_not == "single run on one side":
            single = v.a_name if t.n_a < 2 else v.b_name
            return text + f"; {single} has a single run, so no test is possible (give it more seeds)"
        return text + "; neither side varies over its seeds, so no t-test is possible"
    text += f", 95% CI {100 * t.ci_low:.2f} to {100 * t.ci_high:.2f}, "
    if t.family > 1:
        text += f"{_p(t.p_holm)} after Holm correction over {t.family} comparisons"
    else:
        text += f"{_p(t.p_holm)} (a single comparison, so no correction)"
    if t.significant:
        return text + f": significant at {ALPHA}"
    return text + f": not significant at {ALPHA}; " + _seeds_note(v)


def _seeds_note(v: Verdict) -> str:
    if v.seeds is None:
        return "no number of seeds makes a zero difference significant"
    size = f"a true difference of {100 * abs(v.test.diff):.2f} points"
    have = min(v.test.n_a, v.test.n_b)
    if v.seeds <= have:
        return (f"{have} seeds per arm would find {size} with {POWER:.0%} power at two-sided {ALPHA}, as far as the "
                "spread of so few seeds tells: a near miss that a few more seeds per arm would settle")
    text = f"{size} would need {_seeds(v.seeds)} per arm to be found with {POWER:.0%} power at two-sided {ALPHA}"
    if v.seeds_corrected is not None and v.seeds_corrected != v.seeds:
        text += (f" ({_seeds(v.seeds_corrected)} at {ALPHA}/{v.test.family}, allowing for the correction "
                 f"over {v.test.family} comparisons)")
    return text


def _seeds(n: int) -> str:
    return f"more than {MAX_SEEDS:,} seeds" if n > MAX_SEEDS else f"about {n} seeds"


def _flipped(t: Welch) -> Welch:
    return replace(t, n_a=t.n_b, n_b=t.n_a, mean_a=t.mean_b, mean_b=t.mean_a, diff=-t.diff,
                   ci_low=None if t.ci_high is None else -t.ci_high,
                   ci_high=None if t.ci_low is None else -t.ci_low)


def _hold_others_fixed(configs: List[Configuration], key: str) -> Dict[tuple, List[Configuration]]:
    groups: Dict[tuple, List[Configuration]] = {}
    for c in configs:
        fixed = tuple((k, v) for k, v in c.settings.items() if k != key)
        groups.setdefault(fixed, []).append(c)
    return groups


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _pct(s: Stat, n: bool = True) -> str:
    spread = f" ± {100 * s.std:.2f}" if s.std is not None else ""
    return f"{100 * s.mean:.2f}{spread}%" + (f" (n={s.n})" if n else "")
