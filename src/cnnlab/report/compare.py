"""One line per comparison: which configuration won, by how much, and whether that beats the seed noise.

"Exceeds the seed spread" means the mean +/- std intervals of the two do not overlap (the difference
is larger than the sum of their standard deviations over seeds): a rough rule, stated as such, and
honest about single runs, whose spread is unknown.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from cnnlab.report.group import Configuration, Stat

METRIC_NAMES = {"test_acc": "test accuracy", "best_val_acc": "best validation accuracy"}
# The arm a comparison preset measures the others against (conf/variant/baseline.yaml, scratch.yaml)
REFERENCE_VALUES = ("baseline", "scratch")


def ranking_metric(configs: List[Configuration]) -> str:
    """Test accuracy, or the best validation accuracy where no run reached the test."""
    return "test_acc" if any(c.stat("test_acc") for c in configs) else "best_val_acc"


def comparison_lines(configs: List[Configuration]) -> List[str]:
    metric = ranking_metric(configs)
    scored = [c for c in configs if c.stat(metric)]
    if len(scored) < 2:
        return []
    lines = [_overall(scored, metric)]
    keys = list(scored[0].settings)
    if len(keys) == 1:
        lines += _against_reference(scored, keys[0], metric)
    if len(keys) > 1:  # with several swept keys, also compare each key's values with the others held fixed
        for key in keys:
            for fixed, members in _hold_others_fixed(scored, key).items():
                if len(members) > 1:
                    lines.append(_within(key, dict(fixed), members, metric))
    return lines


def _overall(scored: List[Configuration], metric: str) -> str:
    first, second = sorted(scored, key=lambda c: -c.stat(metric).mean)[:2]
    a, b = first.stat(metric), second.stat(metric)
    return (f"Overall by {METRIC_NAMES[metric]}: **{first.label}** won with {_pct(a)}, "
            f"{_points(a, b)} ahead of {second.label} ({_pct(b)}); {_spread_verdict(a, b)}.")


def _within(key: str, fixed: Dict[str, str], members: List[Configuration], metric: str) -> str:
    first, second = sorted(members, key=lambda c: -c.stat(metric).mean)[:2]
    a, b = first.stat(metric), second.stat(metric)
    context = f" (with {', '.join(f'{k}={v}' for k, v in fixed.items())})" if fixed else ""
    return (f"{key}{context}: **{first.settings[key]}** beat {second.settings[key]}, {_pct(a)} vs "
            f"{_pct(b)}, {_points(a, b)}; {_spread_verdict(a, b)}.")


def _against_reference(scored: List[Configuration], key: str, metric: str) -> List[str]:
    """Each arm against the sweep's baseline (or from-scratch) arm, with the final validation loss,
    where overfitting shows first."""
    reference = next((c for c in scored if c.settings[key] in REFERENCE_VALUES), None)
    if reference is None:
        return []
    ref, ref_loss = reference.stat(metric), reference.stat("final_val_loss")
    lines = []
    for config in scored:
        if config is reference:
            continue
        arm = config.stat(metric)
        line = (f"{key}={config.settings[key]} against {reference.settings[key]}: "
                f"{100 * (arm.mean - ref.mean):+.2f} points ({_pct(arm)} vs {_pct(ref)}), "
                f"{_spread_note(arm, ref)}")
        loss = config.stat("final_val_loss")
        if loss and ref_loss:
            line += f"; final validation loss {loss.mean:.3f} vs {ref_loss.mean:.3f}"
        lines.append(line + ".")
    return lines


def _hold_others_fixed(configs: List[Configuration], key: str) -> Dict[tuple, List[Configuration]]:
    groups: Dict[tuple, List[Configuration]] = {}
    for c in configs:
        fixed = tuple((k, v) for k, v in c.settings.items() if k != key)
        groups.setdefault(fixed, []).append(c)
    return groups


def seed_spread(a: Stat, b: Stat) -> Optional[float]:
    """The sum of the two sides' std over seeds, or None when both are single runs."""
    stds = [s.std for s in (a, b) if s.std is not None]
    return sum(stds) if stds else None


def exceeds_spread(a: Stat, b: Stat) -> Optional[bool]:
    """True/False when at least one side has a spread over seeds; None when both are single runs."""
    spread = seed_spread(a, b)
    return None if spread is None else abs(a.mean - b.mean) > spread


def _spread_verdict(a: Stat, b: Stat) -> str:
    spread = seed_spread(a, b)
    if spread is None:
        return "one run each, so the seed spread is unknown (sweep seed=0,1,2 to know)"
    if exceeds_spread(a, b):
        return f"this exceeds the seed spread ({100 * spread:.2f} points)"
    return f"this is within the seed spread ({100 * spread:.2f} points): not a clear win"


def _spread_note(a: Stat, b: Stat) -> str:
    """The seed-spread verdict without naming a winner."""
    spread = seed_spread(a, b)
    if spread is None:
        return "one run each (seed spread unknown)"
    return f"{'beyond' if exceeds_spread(a, b) else 'within'} the seed spread ({100 * spread:.2f} points)"


def _pct(s: Stat) -> str:
    spread = f" ± {100 * s.std:.2f}" if s.std is not None else ""
    return f"{100 * s.mean:.2f}{spread}% (n={s.n})"


def _points(a: Stat, b: Stat) -> str:
    diff = 100 * (a.mean - b.mean)
    return f"{diff:.2f} points" if round(diff, 2) else "tied at 0.00 points"
