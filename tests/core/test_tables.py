import math

import pytest

from effcourse.core.tables import table


def test_mapping_rows_take_columns_from_the_first_row_and_format_floats():
    t = table([{"method": "VQ", "mse": 3.14159e-3, "ok": True}, {"method": "SCQ", "mse": 1.2e-3, "ok": False}],
              fmt={"mse": ".2e"})
    assert str(t).splitlines() == ["| method | mse | ok |", "| --- | --- | --- |",
                                   "| VQ | 3.14e-03 | yes |", "| SCQ | 1.20e-03 | no |"]


def test_sequence_rows_need_columns_and_cells_are_escaped():
    t = table([("a|b", None, math.inf, 7)], ["x", "y", "z", "n"], caption="note")
    lines = str(t).splitlines()
    assert lines[2] == "| a\\|b |  | inf | 7 |" and lines[-1] == "*note*"
    assert "<b>" not in str(table([("<b>",)], ["x"], escape_html=True))
    assert str(table([("$|x| < 1$",)], ["x"])).splitlines()[2] == "| $\\|x\\| < 1$ |"


def test_callable_format_and_default_float_format():
    t = table([{"p": 0.123456, "err": 0.0312}], fmt={"err": lambda v: f"{100 * v:.1f} %"})
    assert str(t).splitlines()[2] == "| 0.123 | 3.1 % |"


@pytest.mark.parametrize("rows, columns, kwargs, match", [
    ([(1, 2)], None, {}, "columns is required"),
    ([(1, 2)], ["a"], {}, "2 values for 1 columns"),
    ([{"a": 1, "b": 2}], ["a"], {}, "not among the columns"),
    ([{"a": 1}], None, {"fmt": {"b": ".2f"}}, "unknown columns"),
])
def test_bad_input_is_named(rows, columns, kwargs, match):
    with pytest.raises(ValueError, match=match):
        table(rows, columns, **kwargs)
