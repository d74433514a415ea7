"""The step-through backward page: its steps are the engine's traversal, its gradients
autograd's, and the page stands alone (no browser here: the page is parsed)."""
import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import graph_nodes, topological_order
from minigrad.viz import save_steps
from minigrad.viz.steps import FORMULAS, GENERIC_FORMULA, backward_steps


class _Page(HTMLParser):
    """The tags with an id, the steps JSON and every attribute value of the page."""

    def __init__(self):
        super().__init__()
        self.ids, self.attributes, self._in_data, self.data = {}, [], False, ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attributes += [(k, v) for k, v in attrs.items()]
        if "id" in attrs:
            self.ids[attrs["id"]] = (tag, attrs)
        self._in_data = attrs.get("id") == "steps-data"

    def handle_endtag(self, tag):
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data += data


def parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def op_id(loss):
    """{node: its id in the drawing}: draw_graph numbers ops in forward order."""
    return {node: f"op{i}" for i, node in enumerate(graph_nodes((loss,)))}


def composed_batchnorm(rng, eps=1e-5):
    """BatchNorm's training forward from the library's ops, every intermediate kept."""
    x = mg.tensor(rng.standard_normal((4, 2)) * 2 + 1, requires_grad=True)
    r = mg.tensor(rng.standard_normal((4, 2)))
    mean = x.mean(axis=0, keepdims=True)
    var = x.var(axis=0, keepdims=True)
    centered = x - mean
    invstd = 1.0 / (var + eps).sqrt()
    x_hat = centered * invstd
    loss = (x_hat * r).sum()
    return x, loss, [mean, var, centered, invstd, x_hat, loss]


def shared_paths(rng):
    """x used four times: its gradient is the sum of four edges."""
    x = mg.tensor(rng.standard_normal(3), requires_grad=True)
    y = x * x + x.exp() * x
    loss = (y * y).sum()
    return x, loss, [y, loss]


@pytest.mark.parametrize("make", [composed_batchnorm, shared_paths])
def test_steps_follow_the_engine_and_carry_autograds_gradients(make, tmp_path):
    x, loss, intermediates = make(np.random.default_rng(0))
    path = save_steps(loss, tmp_path / "steps.html", names={"x": x})
    steps = json.loads(parse(path).data)
    ids = op_id(loss)
    # the engine's order: every node of the traversal, once, root first
    assert [s["node"] for s in steps] == [ids[n] for n in topological_order(loss.grad_fn)]
    assert steps[0]["grad_in"]["values"] == [1.0]
    for t in intermediates:
        t.retain_grad()
    loss.backward()  # the page retained the graph: backward still works
    for t in intermediates:
        step = next(s for s in steps if s["node"] == ids[t.grad_fn])
        assert step["op"] == t.grad_fn.name
        np.testing.assert_allclose(step["grad_in"]["values"], t.grad.data.ravel(), rtol=1e-12)
    # the running sum into x: one more edge each time, ending at autograd's dL/dx
    into_x = [out for s in steps for out in s["grads_out"] if out["name"] == "x"]
    assert [out["paths"] for out in into_x] == list(range(1, len(into_x) + 1))
    assert all(out["paths_total"] == len(into_x) for out in into_x)
    assert len(into_x) == (3 if make is composed_batchnorm else 4)
    np.testing.assert_allclose(into_x[-1]["sum"]["values"], x.grad.data.ravel(), rtol=1e-12)
    np.testing.assert_allclose(np.sum([o["grad"]["values"] for o in into_x], axis=0),
                               x.grad.data.ravel(), rtol=1e-12)


def test_page_meets_the_dom_contract_and_stands_alone(tmp_path):
    _, loss, _ = composed_batchnorm(np.random.default_rng(1))
    page = parse(save_steps(loss, tmp_path / "bn.html"))
    ids = page.ids
    for button in ("prev", "next", "play"):
        assert ids[button][0] == "button"
    assert ids["slider"][0] == "input" and ids["slider"][1]["type"] == "range"
    for element in ("step-index", "node-title", "grad-in", "steps-data"):
        assert element in ids
    assert ids["steps-data"][1]["type"] == "application/json"
    steps = json.loads(page.data)
    for step in steps:
        assert set(step) >= {"node", "op", "grad_in", "grads_out", "formula"}
        tag, attrs = ids[step["node"]]  # the op's node in the drawing has the step's id
        assert tag == "g" and attrs["class"] == "node"
        assert step["formula"] == FORMULAS[step["op"]]
        for out in step["grads_out"]:
            assert out["target"] in ids
    # nothing is fetched: no address, no src or href attribute anywhere
    text = (tmp_path / "bn.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    assert not [k for k, _ in page.attributes if k in ("src", "href", "xlink:href")]


def test_large_tensors_give_a_norm_and_a_small_heat_map():
    x = mg.tensor(np.random.default_rng(2).standard_normal((40, 30)), requires_grad=True)
    loss = (x.tanh() * 3.0).sum()
    steps = backward_steps(loss)
    tanh = next(s for s in steps if s["op"] == "Tanh")
    grad_in = tanh["grad_in"]
    assert "values" not in grad_in and grad_in["shape"] == [40, 30]
    assert grad_in["norm"] == pytest.approx(np.sqrt(40 * 30) * 3.0)
    cells = grad_in["heat"]["cells"]
    assert len(cells) == 16 and all(len(row) == 16 for row in cells)
    np.testing.assert_allclose(cells, 3.0)
    assert tanh["formula"] == FORMULAS["Tanh"]


def test_an_unknown_op_gets_the_generic_formula_and_a_freed_graph_is_a_clear_error():
    class Twice(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x

        @staticmethod
        def backward(ctx, grad):
            return 2 * grad

    x = mg.tensor([1.0, 2.0], requires_grad=True)
    loss = (Twice.apply(x) * x).sum()
    steps = backward_steps(loss)
    assert [s["op"] for s in steps] == ["Sum", "Mul", "Twice"]
    assert steps[2]["formula"] == GENERIC_FORMULA
    assert steps[2]["grads_out"][0]["grad"]["values"] == [2.0, 4.0]
    loss.backward()  # frees Mul's saved inputs
    with pytest.raises(RuntimeError, match="freed"):
        backward_steps(loss)


def test_graph_command_writes_the_page(tmp_path):
    out = tmp_path / "bn.html"
    result = subprocess.run([sys.executable, "-m", "minigrad", "graph", "batchnorm", "--steps",
                             "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    steps = json.loads(parse(out).data)
    assert steps[0]["op"] == "Sum"
    into_x = [o for s in steps for o in s["grads_out"] if o["name"] == "x"]
    assert len(into_x) == 3 and into_x[-1]["paths"] == into_x[-1]["paths_total"] == 3
    wrong = subprocess.run([sys.executable, "-m", "minigrad", "graph", "batchnorm", "--steps",
                            "-o", str(tmp_path / "bn.svg")], capture_output=True, text=True,
                           timeout=120)
    assert wrong.returncode == 2 and ".html" in wrong.stderr
