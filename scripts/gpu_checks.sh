#!/usr/bin/env bash
# The GPU checks of docs/benchmarks.md in one call, on a GPU machine whose python3 has PyTorch:
#   bash scripts/gpu_kit.sh                          # first, here: .gpu_kit/ (Hydra, OmegaConf, data)
#   bash scripts/gpu_checks.sh                       # there, with .gpu_kit carried
# 1. the CUDA paths, each a real 2-epoch run (scripts/gpu_smoke.py): bf16 and fp16 autocast, fused Adam
#    and SGD, channels_last, torch.compile, fp32 without TF32, and the README's default command;
# 2. ResNet-18 at 32x32x3, batch 512: cnnlab's loop against the tutorial loop (scripts/bench.py);
# 3. time to 94% on Fashion-MNIST: experiment=fast94, seeds 0-2, on the GPU (scripts/time_to_accuracy.py);
# 4. the optimizers sweep, old way against new (scripts/bench_sweep.py).
# Each step has its own time limit, so one that hangs cannot take the others with it. Everything
# printed also goes to $OUT/gpu_checks.log (or ./gpu_checks.log); each script's JSON line to
# $OUT/gpu_checks.jsonl. DEVICE=cpu QUICK=1 rehearse the plumbing on a machine without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-.}
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
export PYTHONPATH="$PWD/src:$PWD/.gpu_kit/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CNNLAB_DATA="$PWD/.gpu_kit/data"
work=$(mktemp -d)
log="$out/gpu_checks.log"
jsonl="$out/gpu_checks.jsonl"
: >"$log"; : >"$jsonl"
if [ "${QUICK:-0}" = 1 ]; then n=1024; rounds=1; samples=1024; scale=8; sweep_extra="trainer.max_epochs=2 seed=0"
  tta_extra="trainer.max_epochs=1 dataset.train_size=2000"
else n=50000; rounds=3; samples=16384; scale=1; sweep_extra=""; tta_extra=""; fi

failed=0
step() {  # step NAME SECONDS COMMAND...: run it with a limit, its output into the log, its JSON lines kept
  local name=$1 limit=$2; shift 2
  echo "=== $name ($(date -u +%H:%M:%S) UTC, limit ${limit}s): $*" | tee -a "$log"
  local start=$SECONDS
  timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$log" | tee "$work/step.out" | tail -n 25
  local code=${PIPESTATUS[0]}
  grep '^{' "$work/step.out" | sed "s/^{/{\"step\": \"$name\", /" >>"$jsonl"
  echo "=== $name: exit $code after $((SECONDS - start)) s" | tee -a "$log"
  [ "$code" = 0 ] || failed=1
}

{
  date -u; uname -a; nvidia-smi -L 2>&1 || true
  "$python" -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU', torch.get_num_threads(), 'threads')"
  git log -1 --format='commit %h %s' 2>/dev/null || true
} 2>&1 | tee -a "$log"

# limits: 560 s (+5 s each if killed) if every step ran to its limit, inside one 600 s device call;
# expected ~5-6 minutes on an H100/H200-class card. Most important first: a cut-off run keeps those.
step smoke $((250 * scale)) "$python" scripts/gpu_smoke.py --device "$device" --samples "$samples" --limit-scale "$scale"
step throughput 90 "$python" scripts/bench.py --dataset synthetic --shape 3 32 32 --model resnet18 --batch 512 \
  --optim momentum --n "$n" --rounds "$rounds" --device "$device"
step time-to-94 120 "$python" scripts/time_to_accuracy.py --dataset fashion_mnist --preset fast94 --seeds 0 1 2 \
  --fast-args device="$device" $tta_extra
step sweep 100 "$python" scripts/bench_sweep.py --presets optimizers --extra device="$device" $sweep_extra
rm -rf "$work"
echo "done: $log, $jsonl ($([ $failed = 0 ] && echo "every step passed" || echo "a step failed"))"
exit $failed
