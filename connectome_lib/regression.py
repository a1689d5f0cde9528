"""Key numbers: the regression values every stage notebook prints, and how they are compared.

A stage notebook ends with :func:`print_key_numbers`, which prints a block such as::

    key numbers
      final_density: 0.512000 [exact]
      val_loss_gen0: 4.685123

The nbval suite (``tests/nbval/conftest.py``) compares such a block with the committed
reference notebook through :func:`compare_key_numbers` instead of as text:

* a value marked ``[exact]`` (counts, densities: anything that does not depend on floating-point
  rounding) must match exactly;
* any other number may differ from the reference by its **tolerance**, read from
  ``tests/nbval/tolerances.json``. That file is written by ``scripts/measure_tolerances.py``,
  which runs the smoke pipeline under several CPU kernels (``ATEN_CPU_CAPABILITY=avx2``,
  ``default``, MKL/oneDNN capped at AVX2, one thread) and records, per key, the largest deviation
  from the default run it observed; the tolerance is ``TOLERANCE_FACTOR`` times that deviation
  plus one printed quantum (two values closer than the print resolution can still print one
  digit apart). A key with no recorded variation gets the quantum alone. Tolerances are
  measured, never chosen to make a failing test pass.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

HEADER = "key numbers"
EXACT_MARK = "[exact]"
DIGITS = 6
#: a measured deviation is multiplied by this to give the tolerance (other machines vary more)
TOLERANCE_FACTOR = 5.0
_LINE = re.compile(r"^\s+(?P<key>[^:]+): (?P<value>\S+)(?P<exact> \[exact\])?\s*$")


def format_key_numbers(values: dict[str, Any], exact: Iterable[str] = (), digits: int = DIGITS) -> str:
    """The printed block (see the module docstring); floats rounded to ``digits`` decimals."""
    exact = set(exact)
    unknown = exact - set(values)
    if unknown:
        raise KeyError(f"exact keys {sorted(unknown)} are not among the key numbers")
    lines = [HEADER]
    for k in sorted(values):
        v = values[k]
        if isinstance(v, (bool, np.bool_)):
            text = str(bool(v))
        elif isinstance(v, (int, np.integer)):
            text = str(int(v))
        elif isinstance(v, (float, np.floating)):
            text = "nan" if not math.isfinite(float(v)) else f"{float(v):.{digits}f}"
        else:
            text = str(v).replace(" ", "_")
        lines.append(f"  {k}: {text}" + (f" {EXACT_MARK}" if k in exact else ""))
    return "\n".join(lines) + "\n"


def print_key_numbers(values: dict[str, Any], exact: Iterable[str] = (), digits: int = DIGITS) -> None:
    print(format_key_numbers(values, exact, digits), end="")


@dataclass(frozen=True)
class KeyNumber:
    text: str
    exact: bool

    @property
    def number(self) -> float | None:
        try:
            return float(self.text)
        except ValueError:
            return None

    @property
    def quantum(self) -> float:
        """The print resolution of this value (``1e-6`` for ``4.685123``, 1 for an integer)."""
        return 10.0 ** -len(self.text.split(".", 1)[1]) if "." in self.text else 1.0


def is_key_numbers(text: str) -> bool:
    return text.startswith(HEADER + "\n")


def parse_key_numbers(text: str) -> dict[str, KeyNumber]:
    """The block printed by :func:`print_key_numbers`, back as ``{key: KeyNumber}``."""
    if not is_key_numbers(text):
        raise ValueError(f"not a key-numbers block (it must start with {HEADER!r})")
    out = {}
    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError(f"malformed key-number line {line!r}")
        out[m["key"]] = KeyNumber(m["value"], bool(m["exact"]))
    return out


def load_tolerances(path: str | Path) -> dict[str, float]:
    """``{"<notebook>:<key>": measured deviation}`` from a tolerances file (empty if absent)."""
    p = Path(path)
    if not p.exists():
        return {}
    data = json.loads(p.read_text())
    return {k: float(v["max_abs_deviation"]) for k, v in data.get("keys", {}).items()}


def tolerance(measured: float, quantum: float) -> float:
    return TOLERANCE_FACTOR * measured + quantum


def compare_key_numbers(test_text: str, ref_text: str, measured: dict[str, float], notebook: str = "") -> list[str]:
    """Differences between a run's key numbers and the reference's, as readable lines (empty
    list: they agree). ``measured`` maps ``"<notebook>:<key>"`` to the measured deviation."""
    test, ref = parse_key_numbers(test_text), parse_key_numbers(ref_text)
    problems = []
    for k in sorted(set(ref) - set(test)):
        problems.append(f"{k}: missing from the run (reference {ref[k].text})")
    for k in sorted(set(test) - set(ref)):
        problems.append(f"{k}: not in the reference (run {test[k].text}); regenerate the references")
    for k in sorted(set(ref) & set(test)):
        r, t = ref[k], test[k]
        if r.exact or t.exact:
            if r.text != t.text or r.exact != t.exact:
                problems.append(f"{k}: {t.text} != {r.text} (exact)")
            continue
        rn, tn = r.number, t.number
        if rn is None or tn is None or math.isnan(rn) or math.isnan(tn):
            if r.text != t.text:
                problems.append(f"{k}: {t.text} != {r.text}")
            continue
        tol = tolerance(measured.get(f"{notebook}:{k}", 0.0), max(r.quantum, t.quantum))
        if abs(tn - rn) > tol * (1 + 1e-9):
            problems.append(f"{k}: {t.text} vs reference {r.text}: |diff| {abs(tn - rn):.3g} > tolerance {tol:.3g}")
    return problems


def key_number_deviations(runs: dict[str, dict[str, dict[str, KeyNumber]]], reference: str) -> dict[str, dict]:
    """Per ``"<notebook>:<key>"``, the largest |value - reference run's value| over the other runs.

    ``runs`` maps a variant name to ``{notebook: parsed key numbers}``. Exact keys that differ
    between runs are an error: something declared deterministic is not."""
    ref = runs[reference]
    out: dict[str, dict] = {}
    for nb, keys in ref.items():
        for k, r in keys.items():
            devs = {}
            for variant, nbs in runs.items():
                if variant == reference:
                    continue
                t = nbs[nb][k]
                if r.exact:
                    if t.text != r.text:
                        raise ValueError(
                            f"{nb}:{k} is marked exact but is {t.text} under {variant} and {r.text} by default"
                        )
                    continue
                if r.number is None or t.number is None:
                    if t.text != r.text:
                        raise ValueError(f"{nb}:{k} is not a number and differs under {variant}: {t.text} vs {r.text}")
                    continue
                devs[variant] = abs(t.number - r.number)
            if not r.exact and r.number is not None:
                worst = max(devs.values(), default=0.0)
                out[f"{nb}:{k}"] = {"reference": r.text, "max_abs_deviation": worst,
                                    "by_variant": {v: float(f"{d:.3g}") for v, d in devs.items()},
                                    "tolerance": float(f"{tolerance(worst, r.quantum):.3g}")}
    return out
