"""The demo KB generator: scripts/make_demo_kb.py builds kb/ from the data in scripts/demo_kb/
and lets chatrec.kb validate the result before anything is written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from tests_support import REPO

ROOT = REPO
SCRIPT = ROOT / "scripts" / "make_demo_kb.py"
DATA = ROOT / "scripts" / "demo_kb"
KB = ROOT / "kb"


def run_generator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_generator_reproduces_the_committed_kb_byte_for_byte(tmp_path):
    out = tmp_path / "kb"
    proc = run_generator("--out", str(out))
    assert proc.returncode == 0, proc.stderr
    # kb/adapter is the adapter `chatrec train` built from these files, not generator output
    names = sorted(p.name for p in KB.iterdir() if p.name != "adapter")
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        assert (out / name).read_bytes() == (KB / name).read_bytes(), f"regenerated {name} differs from kb/{name}"
    assert [p.name for p in tmp_path.iterdir()] == ["kb"]  # no temporary folder left behind


def test_a_row_chatrec_kb_rejects_fails_the_run_and_leaves_the_output_untouched(tmp_path):
    data = tmp_path / "demo_kb"
    shutil.copytree(DATA, data)
    devices = data / "products" / "devices.toml"
    text = devices.read_text(encoding="utf-8")
    assert "\nprice = 699.00\n" in text  # the first device, catalogue line 1
    devices.write_text(text.replace("\nprice = 699.00\n", "\nprice = 0.00\n", 1), encoding="utf-8")
    out = tmp_path / "kb"
    out.mkdir()
    (out / "catalogue.jsonl").write_text("the previous catalogue\n", encoding="utf-8")

    proc = run_generator("--data", str(data), "--out", str(out))

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(
        r"^\s*catalogue\.jsonl:1: price\b.*<- products/devices\.toml \(device pixel8\)$", proc.stderr, re.M
    ), proc.stderr
    assert [p.name for p in out.iterdir()] == ["catalogue.jsonl"]
    assert (out / "catalogue.jsonl").read_text(encoding="utf-8") == "the previous catalogue\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_kb", "kb"]
