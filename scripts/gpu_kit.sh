#!/usr/bin/env bash
# Before a GPU check, on this machine: gather what a bare GPU machine lacks into .gpu_kit/ (ignored by
# git), so that scripts/gpu_checks.sh runs there in one call with `.gpu_kit` carried beside the tree.
#   bash scripts/gpu_kit.sh            # then, on the GPU machine: bash scripts/gpu_checks.sh
# .gpu_kit/site: cnnlab's pure-Python dependencies that such a machine's PyTorch image does not have
#                (Hydra, OmegaConf, the ANTLR runtime Hydra parses overrides with, the joblib launcher),
#                copied from this checkout's .venv, so no package index is needed there.
# .gpu_kit/data: Fashion-MNIST's four .gz files (30 MB), for the time-to-accuracy check.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
site=$("$python" -c "import hydra, pathlib; print(pathlib.Path(hydra.__file__).parents[1])")
rm -rf .gpu_kit
mkdir -p .gpu_kit/site/hydra_plugins .gpu_kit/data/fashion_mnist
for name in hydra omegaconf antlr4 hydra_plugins/hydra_joblib_launcher; do
  cp -r "$site/$name" ".gpu_kit/site/$name"
done
find .gpu_kit -name __pycache__ -prune -exec rm -rf {} +
fashion=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}   # Debian's dataset-fashion-mnist package
cp "$fashion"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz .gpu_kit/data/fashion_mnist/
du -sh .gpu_kit
