"""trainer.keep_freed_memory (train/memory.py): a step's buffers come back from the heap instead of the
kernel, and the numbers are those of a run that hands them back."""
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from cnnlab.train import memory

GLIBC = hasattr(os, "confstr") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
BUFFER = 64 << 20  # over glibc's largest sliding mmap threshold (32 MiB): always unmapped on free by default


@pytest.fixture
def released_memory_afterwards():
    before = memory.freed_memory_kept()
    yield
    memory.keep_freed_memory(before)


# Run in a fresh interpreter's main thread, so that no earlier test has shaped its heap. A buffer freed
# among small allocations can leave a hole just too small for the next aligned one, so the heap grows
# a few times before the buffers recycle: the figures are the last few of a run of buffers.
FAULTS = """
import json, resource, torch
from cnnlab.train import memory

def faults_of_each_buffer(count):
    faults = []
    for _ in range(count):  # allocated, written and freed: what each step does with a feature map
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.empty({floats}).fill_(1.0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return faults

def resident_bytes():
    return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()

figures = {{"default": faults_of_each_buffer(4)}}
figures["kept"] = (memory.keep_freed_memory(True), faults_of_each_buffer(16))
resident = resident_bytes()
figures["released"] = (memory.keep_freed_memory(False), resident - resident_bytes())
print(json.dumps(figures))
"""


@pytest.mark.skipif(not GLIBC, reason="only glibc's malloc has the thresholds (elsewhere the key does nothing)")
def test_freed_buffers_are_reused_without_page_faults_and_given_back_when_turned_off():
    out = subprocess.run([sys.executable, "-c", FAULTS.format(floats=BUFFER // 4)], check=True,
                         capture_output=True, text=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    pages = BUFFER // resource.getpagesize()
    assert all(f > pages // 2 for f in figures["default"]), figures  # unmapped on free, faulted in again
    kept, faults = figures["kept"]
    assert kept is True and all(f < pages // 20 for f in faults[-4:]), figures  # the same pages, from the heap
    released, given_back = figures["released"]
    assert released is False and given_back >= BUFFER, figures  # what the heap kept goes back to the OS


def test_keeping_freed_memory_changes_no_number(train_run, tmp_path, released_memory_afterwards):
    common = ["model=lecture_cnn", "trainer.max_epochs=2", "dataset.train_size=256", "trainer.num_threads=1"]
    kept, _ = train_run([*common, "trainer.keep_freed_memory=true"], tmp_path / "kept")
    released, _ = train_run([*common, "trainer.keep_freed_memory=false"], tmp_path / "released")
    assert memory.freed_memory_kept() is False  # the job set it process-wide, as its config said
    for key in ("test_acc", "test_loss", "best_val_loss", "final_train_loss"):
        assert kept[key] == released[key], key
    untimed = [[{k: v for k, v in epoch.items() if k != "seconds"} for epoch in run["history"]]
               for run in (kept, released)]
    assert untimed[0] == untimed[1]


def test_bench_memory_measures_both_ways_each_in_its_own_process():
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_memory.py"
    out = subprocess.run([sys.executable, str(script), "--model=fast_cnn", "--shape", "1", "28", "28",
                          "--classes=10", "--batch=16", "--eval-batch=64", "--eval-images=128", "--steps=2",
                          "--rounds=1"], check=True, capture_output=True, text=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    assert [run["kept"] for run in figures["runs"]["kept"]] == [GLIBC]
    assert [run["kept"] for run in figures["runs"]["released"]] == [False]
    assert set(figures["ratios"]) == {"eval_img_s", "train_img_s"}
    assert all(rate > 0 for way in figures["medians"].values() for rate in way.values())
