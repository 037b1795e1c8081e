"""Training steps of S seeds of one small model: one after another, or stacked as one batched model.

    python scripts/bench_batched_seeds.py --model mlp5x100 --seeds 3 --batch 128 --threads 1

sequential  S models, each its own Adam, one step each in turn (what S jobs do)
batched     the S models' parameters stacked (torch.func.stack_module_state), one vmapped forward
            and backward over S batches, one Adam over the stacked tensors (Adam is elementwise, so
            this is S Adams); the loss is the sum of the S mean losses, so each model's gradient
            is its own
Both see the same data (digits' shape, random values) and start from the same weights; the script
first checks that after a few steps the two agree, then times them in rotation, median of rounds.
An experiment, not a cnnlab path: a batched sweep would also need S sets of metrics, checkpoints
and folders. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnlab.config import ModelConfig  # noqa: E402
from cnnlab.models import build_model  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mlp5x100")
    p.add_argument("--shape", type=int, nargs=3, default=[1, 8, 8])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args()


def make_models(a) -> list[torch.nn.Module]:
    from omegaconf import OmegaConf

    conf = Path(__file__).resolve().parents[1] / "conf" / "model" / f"{a.model}.yaml"
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), OmegaConf.load(conf)))
    models = []
    for seed in range(a.seeds):
        torch.manual_seed(seed)
        models.append(build_model(cfg, tuple(a.shape), 10))
    return models


def main() -> None:
    a = parse_args()
    torch.set_num_threads(a.threads)
    models = make_models(a)
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(a.steps, a.seeds, a.batch, *a.shape, generator=g)
    ys = torch.randint(0, 10, (a.steps, a.seeds, a.batch), generator=g)

    def sequential(ms, opts, steps):
        for i in range(steps):
            for s, (m, o) in enumerate(zip(ms, opts)):
                loss = F.cross_entropy(m(xs[i, s]), ys[i, s])
                o.zero_grad(set_to_none=True)
                loss.backward()
                o.step()

    base = copy.deepcopy(models[0]).to("meta")

    def loss_one(params, buffers, x, y):
        return F.cross_entropy(functional_call(base, (params, buffers), (x,)), y)

    batched_loss = vmap(loss_one)

    def batched(params, buffers, opt, steps):
        for i in range(steps):
            loss = batched_loss(params, buffers, xs[i], ys[i]).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def fresh():
        ms = [copy.deepcopy(m) for m in models]
        opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in ms]
        params, buffers = stack_module_state([copy.deepcopy(m) for m in models])
        params = {k: v.detach().requires_grad_() for k, v in params.items()}
        return ms, opts, params, buffers, torch.optim.Adam(list(params.values()), lr=1e-3)

    ms, opts, params, buffers, bopt = fresh()
    sequential(ms, opts, 5)
    batched(params, buffers, bopt, 5)
    trained = [{k: p.detach() for k, p in m.named_parameters()} for m in ms]
    diff = max(float((params[k][s].detach() - trained[s][k]).abs().max()) for k in params for s in range(a.seeds))
    moved = min(float((trained[s][k] - p.detach()).abs().max()) for s, m in enumerate(models)
                for k, p in m.named_parameters())
    assert moved > 0, "the models did not train"

    times = {"sequential": [], "batched": []}
    for _ in range(a.rounds):
        ms, opts, params, buffers, bopt = fresh()
        start = time.perf_counter()
        sequential(ms, opts, a.steps)
        times["sequential"].append(time.perf_counter() - start)
        start = time.perf_counter()
        batched(params, buffers, bopt, a.steps)
        times["batched"].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    ratio = median["sequential"] / median["batched"]
    print(f"{a.model} {'x'.join(map(str, a.shape))}, {a.seeds} seeds, batch {a.batch}, {a.threads} thread(s): "
          f"sequential {median['sequential'] / a.steps * 1000:.2f} ms per step of all seeds, batched "
          f"{median['batched'] / a.steps * 1000:.2f} ms: {ratio:.2f}x; largest weight difference after 5 steps {diff:.2g} "
          f"(the weights moved by up to {moved:.2g})")
    print(json.dumps({"model": a.model, "seeds": a.seeds, "batch": a.batch, "threads": a.threads,
                      "ms_per_step": {k: round(v / a.steps * 1000, 3) for k, v in median.items()},
                      "ratio": round(ratio, 2), "weight_difference": diff}))


if __name__ == "__main__":
    main()
