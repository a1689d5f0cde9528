"""nbval: compare the stage notebooks' key-number blocks within measured tolerances.

Every other checked cell is compared by nbval as text. A cell whose reference output is a
key-numbers block (:mod:`connectome_lib.regression`) is compared number by number instead:
``[exact]`` values exactly, the others within the tolerances in ``tolerances.json`` (measured
across CPU kernels by ``scripts/measure_tolerances.py``).
"""

from __future__ import annotations

from pathlib import Path

from nbval.plugin import IPyNbCell

from connectome_lib.regression import compare_key_numbers, is_key_numbers, load_tolerances

_MEASURED = load_tolerances(Path(__file__).with_name("tolerances.json"))
_nbval_compare = IPyNbCell.compare_outputs


def _stdout(outputs) -> str:
    return "".join(
        "".join(o["text"]) if isinstance(o.get("text"), list) else o.get("text", "")
        for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def _compare_outputs(self, test, ref, skip_compare=None):
    ref_text = _stdout(ref)
    if not is_key_numbers(ref_text):
        return _nbval_compare(self, test, ref, skip_compare)
    problems = compare_key_numbers(_stdout(test), ref_text, _MEASURED, notebook=Path(str(self.parent.fspath)).name)
    self.comparison_traceback = ["key numbers differ from the reference:", *problems] if problems else []
    return not problems


IPyNbCell.compare_outputs = _compare_outputs
