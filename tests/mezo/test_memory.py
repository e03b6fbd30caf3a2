"""Peak memory in fresh processes (effcourse.mezo.memory)."""

import pytest

from effcourse.mezo.memory import peak_memory


def test_peak_memory_orders_inference_mezo_and_adam():
    # a 4 x 1024^2 MLP (16 MB of weights) at a large batch: Adam's state and the stored activations dominate
    inf = peak_memory("inference", model="mlp", batch_size=1024)
    adam = peak_memory("fo-adam", model="mlp", batch_size=1024)
    assert inf["params_mb"] == pytest.approx(adam["params_mb"]) and inf["params_mb"] > 15
    assert adam["above_libs_mb"] > inf["above_libs_mb"] + 2 * inf["params_mb"]
    with pytest.raises(ValueError, match="method"):
        peak_memory("lbfgs")
