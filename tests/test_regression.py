"""Key-number blocks: printing, parsing, tolerant comparison and measured deviations."""

import json

import pytest

from connectome_lib.regression import (
    compare_key_numbers,
    format_key_numbers,
    is_key_numbers,
    key_number_deviations,
    load_tolerances,
    parse_key_numbers,
    tolerance,
)


def test_roundtrip_and_exact_marks():
    text = format_key_numbers({"loss": 4.6851234, "density": 0.512, "n": 3, "name": "a b"}, exact=["density", "n"])
    assert is_key_numbers(text)
    k = parse_key_numbers(text)
    assert k["loss"].text == "4.685123" and not k["loss"].exact and k["loss"].quantum == pytest.approx(1e-6)
    assert k["density"].exact and k["n"].text == "3" and k["name"].text == "a_b"
    with pytest.raises(KeyError):
        format_key_numbers({"a": 1.0}, exact=["b"])


def test_comparison_uses_measured_tolerances_and_exact_keys():
    ref = format_key_numbers({"loss": 4.685123, "density": 0.512}, exact=["density"])
    near = format_key_numbers({"loss": 4.685125, "density": 0.512}, exact=["density"])
    far = format_key_numbers({"loss": 4.6861, "density": 0.512}, exact=["density"])
    # no measured variation: only the print quantum (1e-6) is allowed
    assert compare_key_numbers(near, ref, {}, "nb") != []
    exact_density = format_key_numbers({"loss": 4.685124, "density": 0.512}, exact=["density"])
    assert compare_key_numbers(exact_density, ref, {}, "nb") == []
    # a measured deviation of 1e-6 allows 5e-6 + 1e-6
    assert compare_key_numbers(near, ref, {"nb:loss": 1e-6}, "nb") == []
    assert compare_key_numbers(far, ref, {"nb:loss": 1e-6}, "nb")[0].startswith("loss:")
    bad = format_key_numbers({"loss": 4.685123, "density": 0.513}, exact=["density"])
    assert "exact" in compare_key_numbers(bad, ref, {"nb:density": 1.0}, "nb")[0]
    missing = format_key_numbers({"density": 0.512}, exact=["density"])
    assert "missing" in compare_key_numbers(missing, ref, {}, "nb")[0]


def test_deviations_across_runs(tmp_path):
    block = lambda v, d=0.5: parse_key_numbers(format_key_numbers({"loss": v, "density": d}, exact=["density"]))  # noqa: E731
    runs = {"default": {"nb": block(1.0)}, "avx2": {"nb": block(1.000004)}, "one_thread": {"nb": block(0.999998)}}
    dev = key_number_deviations(runs, "default")
    assert dev["nb:loss"]["max_abs_deviation"] == pytest.approx(4e-6)
    assert dev["nb:loss"]["tolerance"] == pytest.approx(tolerance(4e-6, 1e-6), rel=1e-2)
    assert "nb:density" not in dev  # exact keys carry no tolerance
    path = tmp_path / "tol.json"
    path.write_text(json.dumps({"keys": dev}))
    assert load_tolerances(path) == {"nb:loss": pytest.approx(4e-6)}
    with pytest.raises(ValueError, match="marked exact"):
        key_number_deviations({"default": {"nb": block(1.0)}, "x": {"nb": block(1.0, 0.6)}}, "default")
