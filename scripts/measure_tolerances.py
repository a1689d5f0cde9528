"""Measure how far the smoke key numbers move across CPU kernels; write tests/nbval/tolerances.json.

Runs the smoke pipeline (papermill, every stage notebook) from fresh run folders under each
variant below and compares the key-number blocks with the reference notebooks in tests/nbval/
(executed with this machine's default kernels by scripts/update_references.sh):

  avx2        ATEN_CPU_CAPABILITY=avx2               PyTorch's vectorised kernels at AVX2
  avx2_blas   ... plus MKL_ENABLE_INSTRUCTIONS=AVX2, ONEDNN_MAX_CPU_ISA=AVX2: matrix products
              as on an AVX2-only machine
  one_thread  OMP_NUM_THREADS=1, MKL_NUM_THREADS=1   reductions split differently

  native      this machine's own default kernels (with --merge, on a machine other than the one
              that made the references: AVX-512 and AMX matrix units round differently)

For each key the largest absolute deviation from the reference is recorded; the nbval
comparison allows TOLERANCE_FACTOR times that plus one printed quantum
(connectome_lib.regression). Usage:  python scripts/measure_tolerances.py [--variants avx2 ...]

With --merge the variants are run on this machine and recorded as ``<variant>@<machine>``
(machine: the widest matrix instructions it has, ``amx``, ``avx512`` or ``avx2``) next to the
deviations already in tolerances.json, so the tolerances cover every machine measured so far:
CI runs on whichever machine it gets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectome_lib.regression import (  # noqa: E402
    TOLERANCE_FACTOR,
    is_key_numbers,
    key_number_deviations,
    parse_key_numbers,
    tolerance,
)

VARIANTS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "avx2_blas": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "one_thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}


def machine_tag() -> str:
    """The widest matrix instructions of this CPU (``amx``, ``avx512``, ``avx2`` or the arch)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    for tag, flag in (("amx", "amx_tile"), ("avx512", "avx512f"), ("avx2", "avx2")):
        if flag in flags:
            return tag
    return platform.machine()


def merge_deviations(old: dict, new: dict) -> dict:
    """Per key: the by-variant deviations of both, the largest of them and its tolerance."""
    out = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, {}), new.get(key, {})
        by = {**a.get("by_variant", {}), **b.get("by_variant", {})}
        ref = b.get("reference", a.get("reference"))
        worst = max(by.values(), default=0.0)
        quantum = 10.0 ** -len(ref.split(".")[1]) if ref and "." in ref else 1.0
        out[key] = {"reference": ref, "max_abs_deviation": worst, "by_variant": by,
                    "tolerance": float(f"{tolerance(worst, quantum):.3g}")}
    return out


def key_blocks(folder: Path) -> dict:
    """``{notebook: parsed key numbers}`` of every executed notebook in ``folder``."""
    out = {}
    for nb in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        if nb.name.endswith((".failed.ipynb", ".running.ipynb")):
            continue
        cells = json.loads(nb.read_text())["cells"]
        for c in cells:
            text = "".join("".join(o.get("text", "")) for o in c.get("outputs", []) if o.get("name") == "stdout")
            if is_key_numbers(text):
                out[nb.name] = parse_key_numbers(text)
    return out


def run_variant(name: str, env_extra: dict, scratch: Path) -> dict:
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    env = {**os.environ, **env_extra, "CONNECTOME_RUNS_DIR": str(scratch / "runs"),
           "CONNECTOME_RESULTS_DIR": str(scratch / "results"), "CONNECTOME_CACHE_DIR": str(scratch / "cache")}
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "connectome_lib.cli", "pipeline", "--profile", "smoke", "--force",
                    "--out-dir", str(scratch / "stages")], cwd=ROOT, env=env, check=True)
    print(f"[{name}] smoke pipeline in {time.time() - t0:.0f} s", flush=True)
    return key_blocks(scratch / "stages")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", default=str(ROOT / "tests" / "nbval" / "tolerances.json"))
    ap.add_argument("--merge", action="store_true", help="record the variants as <variant>@<machine> next to the "
                    "deviations already in --out (for a machine other than the one that made the references)")
    args = ap.parse_args()
    runs = {"default": key_blocks(ROOT / "tests" / "nbval")}
    if not runs["default"]:
        raise SystemExit("no reference notebooks in tests/nbval: run scripts/update_references.sh first")
    variants = [v for v in args.variants if args.merge or v != "native"]  # native = the references themselves
    suffix = f"@{machine_tag()}" if args.merge else ""
    for v in variants:
        runs[v + suffix] = run_variant(v + suffix, VARIANTS[v], ROOT / ".cache" / "tolerances" / v)
    deviations = key_number_deviations(runs, "default")
    if args.merge:
        previous = json.loads(Path(args.out).read_text())
        deviations = merge_deviations(previous["keys"], deviations)
        measured = {**previous.get("variants", {}), **{v + suffix: VARIANTS[v] for v in variants}}
        machines = sorted({*previous.get("machines", [previous.get("machine", "")]),
                           f"{platform.machine()} {platform.processor()} ({machine_tag()})"} - {""})
    else:
        measured = {v: VARIANTS[v] for v in variants}
        machines = [f"{platform.machine()} {platform.processor()} ({machine_tag()})"]
    Path(args.out).write_text(json.dumps({
        "about": "largest |key number - reference| observed across CPU-kernel variants of the smoke pipeline; "
                 f"nbval allows {TOLERANCE_FACTOR} x max_abs_deviation + one printed quantum "
                 "(connectome_lib/regression.py). Written by scripts/measure_tolerances.py.",
        "machines": machines, "variants": measured,
        "keys": deviations,
    }, indent=1, sort_keys=True) + "\n")
    moved = {k: v["max_abs_deviation"] for k, v in deviations.items() if v["max_abs_deviation"] > 0}
    print(f"{len(deviations)} numeric keys, {len(moved)} moved across variants; largest: "
          f"{sorted(moved.items(), key=lambda kv: -kv[1])[:5]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
