"""The step-through page (``mg.viz.save_steps``) in a real browser.

Headless Chromium opens the page from ``file://`` (so it must work offline), and the test steps
it with the buttons, the arrow keys, the slider and play. At every step it checks what the page
shows against autograd itself: the step counter, the op's name, the one highlighted SVG node,
and the gradient arriving at the node, which hooks on the very same graph recorded during a
plain ``backward``.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (``make test``
installs them when run as root); without them the test is skipped and says what is missing.
Set ``MINIGRAD_SCREENSHOT_DIR`` to keep the screenshots it takes.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import viz
from minigrad.autograd import topological_order

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install selenium, or make test)")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
# Waiting is for play only (its timer); generous, because a loaded machine may be slow.
WAIT_SECONDS = 20


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("chromium and chromedriver are needed for the browser test "
                    "(apt-get install chromium chromium-driver; make test does it as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: Chromium refuses to run as root (CI containers) with its sandbox on.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options,
                                  service=webdriver.ChromeService(CHROMEDRIVER))
    except WebDriverException as error:
        pytest.skip(f"chromium could not be started by chromedriver: {error.msg}")
    yield driver
    driver.quit()


@pytest.fixture
def screenshot_dir(tmp_path):
    wanted = os.environ.get("MINIGRAD_SCREENSHOT_DIR")
    return Path(wanted) if wanted else tmp_path


def batchnorm_loss():
    """A composed BatchNorm on a (4, 3) batch and a loss whose gradient depends on the values
    (weighted squares), so no two steps show the same numbers by accident."""
    rng = np.random.default_rng(14)
    x = mg.Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    bn = mg.nn.BatchNorm1d(3, fused=False)
    weights = mg.Tensor(rng.uniform(0.5, 2.0, size=(4, 3)))
    return ((bn(x) ** 2) * weights).sum(), (x, bn.weight, bn.bias)


def arriving_gradients(loss):
    """Every node of ``loss``'s graph in the engine's backward order, with the total gradient
    of its output as backward computes it (a hook on each node's output sees exactly that)."""
    order = topological_order(loss.grad_fn)
    seen, handles = {}, []
    for node in order:
        def record(grad, node=node):
            seen[node] = np.array(grad.data, dtype=np.float64)
        handles.append(node.output_tensor().register_hook(record))
    loss.backward(retain_graph=True)  # the page walks the same graph afterwards
    for handle in handles:
        handle.remove()
    return [(node, seen[node]) for node in order if node in seen]


@pytest.fixture
def page(tmp_path, browser):
    """The page for ``batchnorm_loss`` open in the browser, with autograd's answers per step."""
    loss, leaves = batchnorm_loss()
    expected = arriving_gradients(loss)
    path = tmp_path / "steps.html"
    viz.save_steps(loss, path)
    browser.get(path.resolve().as_uri())
    steps = json.loads(browser.find_element(By.ID, "steps-data").get_attribute("textContent"))
    return browser, steps, expected, [leaf.grad.data for leaf in leaves]


def state(driver):
    """What the page shows now, read from the DOM in one round trip."""
    return driver.execute_script("""
        const grad = document.getElementById('grad-in');
        return {
          index: document.getElementById('step-index').textContent.trim(),
          title: document.getElementById('node-title').textContent.trim(),
          slider: document.getElementById('slider').value,
          current: Array.from(document.querySelectorAll('svg .current'), e => e.id),
          values: grad.getAttribute('data-values'),
          norm: grad.getAttribute('data-norm'),
        };""")


def check_step(driver, steps, expected, k):
    """The page shows step ``k`` (0-based) and it is autograd's ``k``-th backward node."""
    n = len(steps)
    shown = state(driver)
    node, grad = expected[k]
    assert shown["index"] == f"{k + 1} / {n}"
    assert shown["slider"] == str(k)
    assert shown["title"] == steps[k]["op"] == node.name
    assert shown["current"] == [steps[k]["node"]], "exactly the step's SVG node is highlighted"
    if grad.size <= 16:
        values = np.array(json.loads(shown["values"]), dtype=np.float64)
        np.testing.assert_allclose(values.reshape(grad.shape), grad, rtol=1e-9, atol=1e-12)
    else:
        assert float(shown["norm"]) == pytest.approx(float(np.linalg.norm(grad)), rel=1e-9)


def close(shown, grad):
    """A gradient as the page's data gives it ({"shape", "norm", "values"}) equals ``grad``."""
    assert tuple(shown["shape"]) == grad.shape
    assert shown["norm"] == pytest.approx(float(np.linalg.norm(grad)), rel=1e-9)
    np.testing.assert_allclose(np.array(shown["values"], dtype=np.float64).reshape(grad.shape),
                               grad, rtol=1e-9, atol=1e-12)


def test_the_embedded_steps_are_autograds_backward_order(page):
    driver, steps, expected, leaf_grads = page
    assert [s["op"] for s in steps] == [node.name for node, _ in expected]
    for step, (_, grad) in zip(steps, expected):
        close(step["grad_in"], grad)
    # Where paths meet, the page keeps a running sum; once the last path has arrived it must be
    # autograd's total gradient: of the op output the next steps consume, or of a leaf (x, its
    # dL/dx assembled from BatchNorm's three routes; weight; bias).
    arriving = {step["output"]: step["grad_in"] for step in steps}
    finished = {}
    for step in steps:
        for sent in step["grads_out"]:
            if sent["paths"] == sent["paths_total"]:
                finished[sent["target"]] = sent["sum"]
    leaves = sorted(set(finished) - set(arriving), key=lambda t: finished[t]["values"])
    by_values = sorted(leaf_grads, key=lambda g: g.ravel().tolist())
    assert len(leaves) == len(by_values) == 3  # x, weight, bias
    for target, grad in zip(leaves, by_values):
        close(finished[target], grad)
    assert max(sent["paths_total"] for step in steps for sent in step["grads_out"]) >= 3
    for target, total in finished.items():
        if target in arriving:
            assert total == arriving[target]
    svg_nodes = set(driver.execute_script(
        "return Array.from(document.querySelectorAll('svg g.node'), e => e.id);"))
    step_nodes = [s["node"] for s in steps]
    assert set(step_nodes) <= svg_nodes, "every step names a node of the drawn graph"
    assert len(set(step_nodes)) == len(steps), "each op node is one step"


def test_stepping_with_buttons_keys_and_slider_shows_autograds_gradients(page, screenshot_dir):
    driver, steps, expected, _ = page
    n = len(steps)
    assert n == len(expected) >= 10  # the composed BatchNorm: a dozen ops and more
    check_step(driver, steps, expected, 0)
    driver.save_screenshot(str(screenshot_dir / "steps_first.png"))

    # previous on the first step stays there
    driver.find_element(By.ID, "prev").click()
    check_step(driver, steps, expected, 0)

    for k in range(1, n):  # forward through every step with the button
        driver.find_element(By.ID, "next").click()
        check_step(driver, steps, expected, k)
        if k == n // 2:
            driver.save_screenshot(str(screenshot_dir / "steps_middle.png"))
    driver.find_element(By.ID, "next").click()  # next on the last step stays there
    check_step(driver, steps, expected, n - 1)
    driver.save_screenshot(str(screenshot_dir / "steps_last.png"))

    for k in (n - 2, n - 3, n - 4):  # and back
        driver.find_element(By.ID, "prev").click()
        check_step(driver, steps, expected, k)

    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_LEFT)
    check_step(driver, steps, expected, n - 5)
    body.send_keys(Keys.ARROW_RIGHT)
    body.send_keys(Keys.ARROW_RIGHT)
    check_step(driver, steps, expected, n - 3)

    # the slider, as a drag leaves it: a new value and an input event
    for k in (2, n - 1, 5):
        driver.execute_script("""
            const slider = document.getElementById('slider');
            slider.value = arguments[0];
            slider.dispatchEvent(new Event('input', {bubbles: true}));
            slider.dispatchEvent(new Event('change', {bubbles: true}));""", k)
        check_step(driver, steps, expected, k)
    driver.save_screenshot(str(screenshot_dir / "steps_slider.png"))


@pytest.mark.parametrize("start", ["button", "space"])
def test_play_runs_to_the_last_step(page, start):
    driver, steps, expected, _ = page
    n = len(steps)
    driver.execute_script("""
        const slider = document.getElementById('slider');
        slider.value = arguments[0];
        slider.dispatchEvent(new Event('input', {bubbles: true}));""", n - 3)
    check_step(driver, steps, expected, n - 3)
    if start == "button":
        driver.find_element(By.ID, "play").click()
    else:
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.SPACE)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: state(d)["index"] == f"{n} / {n}",
        message=f"play ({start}) did not reach the last step")
    check_step(driver, steps, expected, n - 1)
