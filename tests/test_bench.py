"""Benchmarks run (smoke test only: no timing assertions)."""
import re
import subprocess
import sys

from conftest import ROOT


def test_losses_quick():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "losses.py"), "--quick", "--batch=64", "--classes=10"],
                         capture_output=True, text=True, check=True).stdout
    for name in ("CE (F.cross_entropy)", "CCE", "COT complement step", "FL"):
        assert re.search(rf"{re.escape(name)}\s+[\d.]+ ms\s+[\d.]+x", out), out


def test_throughput_quick(workdir):
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "throughput.py"), "--quick", "--model_index=41",
                             "--dataset=tiny", "--height=16", "--width=16", "--workers=0"],
                            cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"a/b = [\d.]+\s+a/c = [\d.]+", result.stdout), result.stdout


def test_imagenet_path_quick():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "imagenet_path.py"), "--quick", "--workers=1"],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    assert re.search(r"\(a\) project data path: \d+ images/s .* a/b = [\d.]+", out), out


def test_list_import_quick():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "list_import.py"), "--quick"],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    lines, links = re.search(r"(\d+) list lines over 100 classes -> (\d+) links: [\d.]+ s", out).groups()
    assert lines == links, out  # every listed placeholder became a link in the built dataset


def test_coverage_quick():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "coverage.py"), "--quick"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "mean of a group" in out.stdout and "paired difference of two groups" in out.stdout
