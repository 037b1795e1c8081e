"""What `tensorboard --logdir` shows for a 2-job sweep, checked in a real browser (headless Chromium).

    .venv/bin/python scripts/tensorboard_screenshot.py                 # writes docs/img/tensorboard*.png
    .venv/bin/python scripts/tensorboard_screenshot.py --out /tmp/tb   # elsewhere

Runs `cnnlab -m optim=sgd,adam` on digits into a temporary folder, starts TensorBoard on it, checks
through TensorBoard's own HTTP API that the sweep's runs, the `train`/`validation` sub-runs and the
HParams columns (the swept key only, marked as differing) are there, and takes headless screenshots
of the Time Series page (`tensorboard.png`) and the HParams table (`tensorboard_hparams.png`), with
`?forceSVG=true` (headless Chromium has no WebGL to draw the charts with).
Needs Debian's `chromium` (or CHROMIUM=/path/to/chrome); CI has no browser, so this is a script.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEP = ["optim=sgd,adam", "optim.lr=0.05", "trainer.max_epochs=10", "trainer.progress=false",
         "trainer.summary=false", "device=cpu", "trainer.num_threads=1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="folder for the PNGs")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("no chromium found: apt-get install chromium, or set CHROMIUM=/path/to/chrome")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Path(tmp) / "sweep"
        env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
        subprocess.run([sys.executable, "-m", "cnnlab", "-m", *SWEEP, f"hydra.sweep.dir={sweep}"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        port = _free_port()
        board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(sweep), "--port",
                                  str(port), "--host", "127.0.0.1"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            runs = _wait_for_runs(url, 6)
            print("runs:", ", ".join(runs))
            experiment = _post(f"{url}/data/plugin/hparams/experiment", {"experimentName": ""})
            columns = [(h["name"], h["type"], h.get("differs", False)) for h in experiment["hparamInfos"]]
            print("HParams columns:", columns)
            assert columns == [("optim", "DATA_TYPE_STRING", True)], columns
            for page, name in (("timeseries", "tensorboard.png"), ("hparams", "tensorboard_hparams.png")):
                target = args.out / name
                _screenshot(browser, f"{url}/?forceSVG=true#{page}", target, args.width, args.height, Path(tmp))
                print(f"wrote {target} ({target.stat().st_size:,} bytes)")
        finally:
            board.terminate()
            board.wait(timeout=30)


def _screenshot(browser: str, url: str, target: Path, width: int, height: int, tmp: Path) -> None:
    shot = tmp / "shot.png"
    shot.unlink(missing_ok=True)
    subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp / 'profile'}", f"--window-size={width},{height}",
                    "--virtual-time-budget=20000", f"--screenshot={shot}", url],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
    shutil.move(str(shot), str(target))


def _wait_for_runs(url: str, count: int, timeout: float = 120) -> list:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/data/runs", timeout=5) as answer:
                runs = json.load(answer)
            if len(runs) >= count:
                return runs
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"TensorBoard at {url} did not list {count} runs within {timeout:.0f} s")


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
