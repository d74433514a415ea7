"""`minigrad exercise`: the BatchNorm backward stub, and a checker that says what is wrong.

Each planted solution below is the stub with ``batchnorm_backward`` written the way a learner
gets it wrong; the checker must name the mistake."""
import textwrap

import pytest

from minigrad.app import cli
from minigrad.app.exercise import STUB_PATH, check_file

STUB = STUB_PATH.read_text()
STUB_BODY = """    dx, dgamma, dbeta = None, None, None
    # TODO: your code here. Replace the Nones above with your gradients.
    return dx, dgamma, dbeta
"""

# The right answer, written step by step as the hints suggest. The planted mistakes below
# each change one line of it (the marked line).
CORRECT = """
x, x_hat, mu, var, gamma, eps = (cache[k] for k in ("x", "x_hat", "mu", "var", "gamma", "eps"))
N = x.shape[0]
std = np.sqrt(var + eps)
dx_hat = dout * gamma
dvar = np.sum(dx_hat * (x - mu), axis=0) * -0.5 * std ** -3
dmu = -np.sum(dx_hat / std, axis=0)
dx = dx_hat / std + dvar * 2 * (x - mu) / N + dmu / N
dgamma = np.sum(dout * x_hat, axis=0)
dbeta = np.sum(dout, axis=0)
return dx, dgamma, dbeta
"""


def solution(tmp_path, body, name="solution.py"):
    """The stub with ``body`` (unindented code) as batchnorm_backward's body, written to a file."""
    assert STUB.count(STUB_BODY) == 1
    code = STUB.replace(STUB_BODY, textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
                        + "\n")
    path = tmp_path / name
    path.write_text(code)
    return path


def planted(tmp_path, old, new):
    """The correct solution with ``old`` replaced by ``new`` (a string, or lists of them)."""
    body = CORRECT
    for before, after in zip(*((old, new) if isinstance(old, list) else ([old], [new]))):
        assert body.count(before) == 1, before
        body = body.replace(before, after)
    return solution(tmp_path, body)


def verdicts(grade):
    return {v.name: v for v in grade.verdicts}


def wrong_only(grade, name):
    """The message for ``name``, after checking it is the one output judged wrong."""
    assert grade.problem is None, grade.problem
    judged = verdicts(grade)
    assert [n for n, v in judged.items() if not v.ok] == [name], grade.report()
    return judged[name].message


def test_the_correct_solution_passes(tmp_path, capsys):
    path = solution(tmp_path, CORRECT)
    grade = check_file(path)
    assert grade.passed, grade.report()
    assert all(v.vs_finite_differences < 1e-5 and v.vs_closed_form < 1e-6
               for v in grade.verdicts)
    assert cli.main(["exercise", "check", str(path)]) == 0
    assert "3 of 3 right" in capsys.readouterr().out


def test_the_compact_formula_also_passes(tmp_path):
    path = solution(tmp_path, """
        x_hat, gamma, var, eps = cache["x_hat"], cache["gamma"], cache["var"], cache["eps"]
        N = dout.shape[0]
        g = dout * gamma
        dx = (N * g - g.sum(0) - x_hat * (g * x_hat).sum(0)) / (N * np.sqrt(var + eps))
        return dx, (dout * x_hat).sum(0), dout.sum(0)
    """)
    assert check_file(path).passed


# (the line changed, its replacement, words the diagnosis must contain)
DX_MISTAKES = {
    "no variance path": (
        "dx = dx_hat / std + dvar * 2 * (x - mu) / N + dmu / N",
        "dx = dx_hat / std + dmu / N",
        ["has the direct path and the mean path but not the variance path"]),
    "no mean path": (
        "dx = dx_hat / std + dvar * 2 * (x - mu) / N + dmu / N",
        "dx = dx_hat / std + dvar * 2 * (x - mu) / N",
        ["has the direct path and the variance path but not the mean path"]),
    "variance path with the wrong sign": (
        "dvar = np.sum(dx_hat * (x - mu), axis=0) * -0.5 * std ** -3",
        "dvar = np.sum(dx_hat * (x - mu), axis=0) * 0.5 * std ** -3",
        ["the variance path has the wrong sign"]),
    "unbiased variance in the derivative": (
        "dx = dx_hat / std + dvar * 2 * (x - mu) / N + dmu / N",
        "dx = dx_hat / std + dvar * 2 * (x - mu) / (N - 1) + dmu / N",
        ["unbiased variance", "N-1"]),
    "unbiased variance throughout": (
        ["std = np.sqrt(var + eps)", "dvar * 2 * (x - mu) / N"],
        ["std = np.sqrt(x.var(axis=0, ddof=1) + eps)", "dvar * 2 * (x - mu) / (N - 1)"],
        ["unbiased variance"]),
    "eps outside the square root": (
        "std = np.sqrt(var + eps)",
        "std = np.sqrt(var) + eps",
        ["eps is outside the square root"]),
    "variance instead of the standard deviation": (
        "std = np.sqrt(var + eps)",
        "std = var + eps",
        ["variance where the standard deviation belongs"]),
    "gamma forgotten": (
        "dx_hat = dout * gamma",
        "dx_hat = dout",
        ["forgot gamma"]),
    "dx off by a factor N": (
        "dx = dx_hat / std + dvar * 2 * (x - mu) / N + dmu / N",
        "dx = N * (dx_hat / std + dvar * 2 * (x - mu) / N + dmu / N)",
        ["N = 6 times too large"]),
}


@pytest.mark.parametrize("mistake", DX_MISTAKES)
def test_a_planted_dx_mistake_is_diagnosed(tmp_path, mistake):
    old, new, words = DX_MISTAKES[mistake]
    grade = check_file(planted(tmp_path, old, new))
    assert not grade.passed
    # dgamma and dbeta use the cache's x_hat, so they stay right: dx is the one wrong output.
    message = wrong_only(grade, "dx")
    for word in words:
        assert word in message, message


SUM_MISTAKES = {
    "dgamma not summed": ("dgamma = np.sum(dout * x_hat, axis=0)", "dgamma = dout * x_hat",
                          "dgamma", "dgamma is not summed"),
    "dgamma over the wrong axis": ("dgamma = np.sum(dout * x_hat, axis=0)",
                                   "dgamma = np.sum(dout * x_hat, axis=1)", "dgamma",
                                   "summed over the wrong axis (axis=1"),
    "dgamma with x for x_hat": ("dgamma = np.sum(dout * x_hat, axis=0)",
                                "dgamma = np.sum(dout * x, axis=0)", "dgamma",
                                "uses x where x_hat belongs"),
    "dbeta over the wrong axis": ("dbeta = np.sum(dout, axis=0)", "dbeta = np.sum(dout, axis=1)",
                                  "dbeta", "summed over the wrong axis"),
    "dbeta summed over everything": ("dbeta = np.sum(dout, axis=0)", "dbeta = np.sum(dout)",
                                     "dbeta", "summed over every axis"),
    "dbeta a mean": ("dbeta = np.sum(dout, axis=0)", "dbeta = np.mean(dout, axis=0)",
                     "dbeta", "not a mean"),
}


@pytest.mark.parametrize("mistake", SUM_MISTAKES)
def test_a_planted_dgamma_or_dbeta_mistake_is_diagnosed(tmp_path, mistake):
    old, new, name, words = SUM_MISTAKES[mistake]
    message = wrong_only(check_file(planted(tmp_path, old, new)), name)
    assert words in message, message


def test_the_report_gives_a_verdict_per_output_and_exit_status_1(tmp_path, capsys):
    path = planted(tmp_path, *DX_MISTAKES["no variance path"][:2])
    assert cli.main(["exercise", "check", str(path)]) == 1
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines()
             if line.split()[:1] in (["dx"], ["dgamma"], ["dbeta"])}
    assert lines == {"dx": "WRONG", "dgamma": "right", "dbeta": "right"}
    assert "but not the variance path" in out and "2 of 3 right" in out


def test_the_unmodified_stub_is_not_implemented(tmp_path, capsys):
    path = tmp_path / "bn.py"
    assert cli.main(["exercise", "batchnorm", "-o", str(path)]) == 0
    assert path.read_text() == STUB
    capsys.readouterr()
    assert cli.main(["exercise", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "not implemented" in out and "TODO" in out
    assert "Traceback" not in out


def test_the_stub_is_never_overwritten(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text("my work")
    with pytest.raises(SystemExit) as stopped:
        cli.main(["exercise", "batchnorm", "-o", str(path)])
    assert stopped.value.code == 2
    assert "already exists" in capsys.readouterr().err
    assert path.read_text() == "my work"


def test_raising_not_implemented_is_not_a_crash(tmp_path):
    grade = check_file(solution(tmp_path, "raise NotImplementedError"))
    assert grade.not_implemented and not grade.passed


def test_a_syntax_error_names_its_line(tmp_path):
    path = solution(tmp_path, CORRECT.replace("N = x.shape[0]", "N = x.shape[0"))
    line = path.read_text().splitlines().index("    N = x.shape[0") + 1
    grade = check_file(path)
    assert not grade.passed and "SyntaxError" in grade.problem, grade.problem
    # Python reports an unclosed bracket at the line it opens on or at the next one.
    assert f"line {line}" in grade.problem or f"line {line + 1}" in grade.problem


def test_an_exception_in_the_backward_names_its_line(tmp_path):
    path = planted(tmp_path, "dbeta = np.sum(dout, axis=0)", "dbeta = np.sum(dout, axis=5)")
    line = path.read_text().splitlines().index("    dbeta = np.sum(dout, axis=5)") + 1
    grade = check_file(path)
    assert f"line {line}" in grade.problem and "AxisError" in grade.problem, grade.problem
    assert "batchnorm_backward raised" in grade.problem


def test_an_error_at_import_is_reported(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\n\nx = undefined_name\n")
    grade = check_file(path)
    assert "does not run" in grade.problem and "line 3" in grade.problem
    assert "NameError" in grade.problem


def test_a_missing_function_is_named(tmp_path):
    path = tmp_path / "renamed.py"
    path.write_text(STUB.replace("def batchnorm_backward", "def my_backward"))
    grade = check_file(path)
    assert "defines no function batchnorm_backward" in grade.problem


def test_a_wrong_return_is_explained(tmp_path):
    two = check_file(solution(tmp_path, "return dout, dout.sum(0)", "two.py"))
    assert "must return three values" in two.problem and "tuple of 2" in two.problem
    shape = check_file(planted(tmp_path, "return dx, dgamma, dbeta",
                               "return dx.sum(0), dgamma, dbeta"))
    assert "dx has shape (3,); expected x's shape (6, 3)" in verdicts(shape)["dx"].message
    words = check_file(solution(tmp_path, "return 'dx', 'dgamma', 'dbeta'", "words.py"))
    assert "not an array of numbers" in words.problem


def test_a_changed_forward_is_refused(tmp_path):
    path = solution(tmp_path, CORRECT)
    path.write_text(path.read_text().replace("out = gamma * x_hat + beta", "out = x_hat"))
    assert "no longer computes BatchNorm" in check_file(path).problem


def test_a_missing_file_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["exercise", "check", str(tmp_path / "nothing.py")])
    assert stopped.value.code == 2
    assert "no such file" in capsys.readouterr().err


def test_two_wrong_routes_are_both_named(tmp_path):
    path = planted(tmp_path, ["dvar = np.sum(dx_hat * (x - mu), axis=0) * -0.5 * std ** -3",
                              "dx = dx_hat / std + dvar * 2 * (x - mu) / N + dmu / N"],
                   ["dvar = np.sum(dx_hat * (x - mu), axis=0) * 0.5 * std ** -3",
                    "dx = dx_hat / std + dvar * 2 * (x - mu) / N"])
    message = wrong_only(check_file(path), "dx")
    assert "the mean path is missing" in message and "variance path has the wrong sign" in message
    assert message.startswith("your dx has the direct path right"), message


def test_an_unknown_mistake_still_gets_a_hint(tmp_path):
    # The mean path forgets to divide by std: no route combination and no catalogued mistake.
    path = planted(tmp_path, "dmu = -np.sum(dx_hat / std, axis=0)", "dmu = -np.sum(dx_hat, axis=0)")
    message = wrong_only(check_file(path), "dx")
    assert "matches no combination" in message and "does not sum to zero" in message


def test_exiting_from_the_file_is_reported_not_obeyed(tmp_path):
    path = tmp_path / "exits.py"
    path.write_text("import sys\nsys.exit(3)\n")
    grade = check_file(path)
    assert "line 2" in grade.problem and "SystemExit" in grade.problem
