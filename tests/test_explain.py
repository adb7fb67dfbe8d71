"""ffnn.explain: one training step in each author's notation, checked against independent
implementations (autograd's reverse mode, Gashler's path sum in tests/reference, hand-worked numbers
from the derivations), and its text, page and command."""

import json
import math
import re
import shutil

import numpy as np
import pytest

import ffnn
from ffnn.cli import main
from ffnn.explanation import MAX_PARAMETERS, NOTATIONS
from ffnn.explanation.paths import path_sum
from ffnn.gradcheck import finite_differences

from .reference import gashler as ref_gashler
from .reference.autodiff import autograd_gradients

# (sizes, hidden activation, output, loss): every loss, the fused pairs, a softmax without its
# cross-entropy (the Jacobian form) and a kink (relu)
CASES = [([2, 3, 2], "sigmoid", "sigmoid", "half_sse"), ([3, 4, 3], "tanh", "softmax", "cross_entropy"),
         ([2, 3, 3], "relu", "softmax", "mse"), ([2, 3, 2, 1], "elu", "sigmoid", "binary_cross_entropy"),
         ([2, 2, 3, 2], "softplus", "identity", "sse")]


def _batch(sizes, output, seed, n=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0]))
    T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)] if output == "softmax" else rng.uniform(size=(n, sizes[-1]))
    return X, T


def _reference(net, X, T, loss, eta):
    """Every keyed value from independent code: autograd for J and the gradients (and so the update),
    NumPy written here for the forward pass, and Network.backward for δ and ∂J/∂a of each layer."""
    acts = [a.name for a in net.activations]
    Ws, bs = [np.asarray(W) for W in net.weights], [np.asarray(b) for b in net.biases]
    J, dW, db, _ = autograd_gradients(Ws, bs, acts, loss, X, T)
    g = net.backward(net.forward(X), T, loss)
    ref = {("J",): float(J)}
    a = X
    for l, (W, b) in enumerate(zip(Ws, bs), start=1):
        z = a @ W + b
        a = np.asarray(net.activations[l - 1](z))
        for (n, j), v in np.ndenumerate(z):
            ref[("z", l, n, j)], ref[("a", l, n, j)] = v, a[n, j]
            ref[("delta", l, n, j)] = g.deltas[l][n, j]
            if l < net.n_layers:
                ref[("g", l, n, j)] = (g.deltas[l + 1] @ Ws[l].T)[n, j]
        for (k, j), v in np.ndenumerate(dW[l - 1]):
            ref[("dW", l, k, j)], ref[("W+", l, k, j)] = v, W[k, j] - eta * v
        for j, v in enumerate(db[l - 1]):
            ref[("db", l, j)], ref[("b+", l, j)] = v, b[j] - eta * v
    return ref


@pytest.mark.parametrize("notation", sorted(NOTATIONS))
@pytest.mark.parametrize("case", range(len(CASES)))
def test_every_value_of_every_notation_matches_an_independent_computation(notation, case):
    sizes, act, out, loss = CASES[case]
    net = ffnn.Network(sizes, act, out, seed=case)
    net.biases[1][...] = np.linspace(-0.3, 0.3, sizes[1])
    X, T = _batch(sizes, out, case)
    e = ffnn.explain(net, X, T, loss, notation, learning_rate=0.05)
    ref = _reference(net, X, T, loss, 0.05)
    checked = 0
    for eq in e.equations():
        key = eq.lhs.key
        if key in ref:
            want = eq.lhs.factor * ref[key]
            assert eq.lhs.value == pytest.approx(want, rel=1e-10, abs=1e-13), (eq.lhs.symbol, key)
            checked += 1
    kinds = {eq.lhs.key[0] for eq in e.equations()}
    assert {"z", "a", "delta", "dW", "db", "W+", "b+", "J"} <= kinds
    assert checked >= len(e.equations()) * 0.8
    # the numbers written in each sum are the ones the value is made of
    for eq in e.equations():
        if eq.lhs.key[0] in ("z", "dW", "W+"):
            assert eq.numbers.value == pytest.approx(eq.lhs.value, rel=1e-12, abs=1e-15)


def test_the_authors_symbols_and_signs():
    net = ffnn.Network([2, 3, 2], "sigmoid", "sigmoid", seed=0)
    net.biases[2][...] = [0.25, -0.5]
    X, T = np.array([[0.5, -1.0]]), np.array([[1.0, 0.0]])
    g = net.loss_and_gradients(X, T, "half_sse")[1]
    by = {n: {eq.lhs.key: eq.lhs for eq in ffnn.explain(net, X, T, "half_sse", n).equations()} for n in NOTATIONS}
    # Gashler: e = −δ, w_ijk = W[i][k, j], nodes from 0
    e20 = by["gashler"][("delta", 2, 0, 0)]
    assert e20.symbol == "e₂₀" and e20.value == pytest.approx(-g.deltas[2][0, 0]) and e20.ffnn == "−delta[2][0, 0]"
    assert by["gashler"][("dW", 1, 1, 2)].symbol == "∂E/∂w₁₂₁"
    # Xing Chao: o = f(wx − b), his b is minus ours, and so is ∂e/∂b
    assert by["xing"][("b+", 2, 1)].value == pytest.approx(-(-0.5 - 0.1 * g.biases[2][1]))
    assert by["xing"][("db", 2, 0)].value == pytest.approx(-g.biases[2][0])
    assert by["xing"][("dW", 1, 1, 2)].symbol == "∂e/∂w₃₂⁽¹⁾"
    # Kolar and McCulloch: the input is layer 1, so z[1] is Z⁽²⁾ and δ[2] is δ⁽³⁾; w_kj⁽ℓ⁾ feeds ℓ + 1
    assert by["kolar"][("z", 1, 0, 0)].symbol == "Z₁⁽²⁾" and by["kolar"][("delta", 2, 0, 1)].symbol == "δ₂⁽³⁾"
    assert by["kolar"][("dW", 1, 0, 2)].symbol == "∂L/∂w₃₁⁽¹⁾"
    # Wichmann: samples are columns, H⁽ˡ⁾ = δᵀ, Δ⁽ˡ⁾ = ∂J/∂A⁽ˡ⁾, indices from 1
    assert by["wichmann"][("delta", 1, 0, 2)].symbol == "H₃₁⁽¹⁾"
    assert by["wichmann"][("g", 1, 0, 2)].symbol == "Δ₃₁⁽¹⁾"
    assert by["sheptunov"][("delta", 2, 0, 1)].symbol == "δ₂⁽²⁾"
    assert by["ffnn"][("delta", 2, 0, 1)].symbol == "delta[2][0, 1]"


def test_hand_worked_results_of_xing_chao_and_kolar_mcculloch():
    # Xing Chao §1.1: o = f(wx − b), e = (t − o)², Δw = −2η(o − t)f′x
    w, b, x, t, eta = 0.7, 0.2, 1.3, 0.1, 0.5
    o = 1 / (1 + math.exp(-(w * x - b)))
    net = ffnn.Network.from_parameters([[[w]]], [[-b]], ["sigmoid"])
    e = ffnn.explain(net, [[x]], [[t]], "sse", "xing", learning_rate=eta)
    new_w = [eq for eq in e.equations() if eq.lhs.key == ("W+", 1, 0, 0)][0]
    assert new_w.lhs.value - w == pytest.approx(-2 * eta * (o - t) * o * (1 - o) * x, rel=1e-12)
    assert [eq for eq in e.equations() if eq.lhs.key == ("b", 1, 0)] == []  # b is a given, not an equation
    # Kolar and McCulloch's simplest interesting case: 1-2-1, tanh, identity output, L = (y − f)²
    net = ffnn.Network.from_parameters([[[0.4, -0.7]], [[0.3], [-0.5]]], [[0.1, 0.2], [0.05]], ["tanh", "identity"])
    xk, yk = 1.5, 0.8
    a1, a2 = math.tanh(0.1 + 0.4 * xk), math.tanh(0.2 - 0.7 * xk)
    f = 0.05 + 0.3 * a1 - 0.5 * a2
    d13 = -2 * (yk - f)
    values = ffnn.explain(net, [[xk]], [[yk]], "sse", "kolar").values
    assert values[("delta", 2, 0, 0)] == pytest.approx(d13, rel=1e-13)
    assert values[("delta", 1, 0, 1)] == pytest.approx(d13 * -0.5 * (1 - a2 ** 2), rel=1e-13)
    assert values[("dW", 1, 0, 1)] == pytest.approx(d13 * -0.5 * (1 - a2 ** 2) * xk, rel=1e-13)


def test_gashler_path_sum_against_the_reference_and_backward():
    net = ffnn.Network([3, 4, 3, 2], ["tanh", "softplus"], "sigmoid", seed=5)
    net.biases[2][...] = [0.1, -0.2, 0.3]
    X, T = _batch([3, 4, 3, 2], "sigmoid", 1, n=2)
    e = ffnn.explain(net, X, T, "mse", "gashler")
    g = net.loss_and_gradients(X, T, "mse")[1]
    w, b = ref_gashler.from_network(net)
    acts = [None, "tanh", "softplus", "sigmoid"]
    for l, k, j in [(1, 2, 3), (2, 0, 1), (3, 2, 1)]:
        p = path_sum(e.values, net.sizes, l, k, j)
        assert p.count == 2 * math.prod(net.sizes[l + 1:])
        assert p.total == pytest.approx(ref_gashler.weight_gradient(w, b, acts, X, T, "mse", l, j, k), rel=1e-11)
        assert p.total == pytest.approx(g.weights[l][k, j], rel=1e-11)
        assert sum(term for _, _, term in p.paths) == pytest.approx(p.total, rel=1e-12)


def test_finite_differences_match_backward():
    net = ffnn.Network([2, 3, 2], "tanh", "softmax", seed=2)
    X, T = _batch([2, 3, 2], "softmax", 2)
    fd = finite_differences(net, X, T, "cross_entropy")
    g = net.loss_and_gradients(X, T, "cross_entropy")[1]
    for l in (1, 2):
        np.testing.assert_allclose(fd[f"W[{l}]"], g.weights[l], rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(fd[f"b[{l}]"], g.biases[l], rtol=1e-7, atol=1e-10)


def test_conventions_are_said_not_converted():
    net = ffnn.Network([2, 3, 1], "tanh", "identity", seed=0)
    X, T = [[0.3, -0.2]], [[0.5]]
    own = ffnn.explain(net, X, T, "sse", "kolar").conventions
    other = ffnn.explain(net, X, T, "mse", "kolar").conventions
    assert not any("this network's loss" in c for c in own)
    assert any("this network's loss is mse" in c for c in other)
    assert any("minus ffnn's b" in c for c in ffnn.explain(net, X, T, "sse", "xing").conventions)
    assert any("e = −δ" in c for c in ffnn.explain(net, X, T, "half_sse", "gashler").conventions)
    assert any("1/(2N)" in c for c in ffnn.explain(net, X, T, "sse", "wichmann").conventions)
    soft = ffnn.Network([2, 3, 2], "tanh", "softmax", seed=0)
    assert any("fused" in c for c in ffnn.explain(soft, X, [[0, 1]], "cross_entropy").conventions)


def test_a_users_activation_uses_its_own_derivative():
    cube = ffnn.Activation("cube", lambda z: z ** 3, lambda z: 3 * z ** 2)
    net = ffnn.Network([2, 2, 1], cube, "identity", seed=0)
    e = ffnn.explain(net, [[0.5, -0.4]], [[0.1]], "mse", "wichmann")
    g = net.loss_and_gradients([[0.5, -0.4]], [[0.1]], "mse")[1]
    assert e.values[("dW", 1, 0, 1)] == pytest.approx(g.weights[1][0, 1], rel=1e-12)
    assert any("'cube'" in c and "derivative function" in c for c in e.conventions)
    assert "cube′(" in e.text()


def test_bad_input_is_named():
    net = ffnn.Network([2, 3, 1], seed=0)
    with pytest.raises(ValueError, match="unknown notation 'leibniz'"):
        ffnn.explain(net, [[1, 2]], [[0]], "mse", "leibniz")
    with pytest.raises(ValueError, match=f"at most {MAX_PARAMETERS:,}"):
        ffnn.explain(ffnn.Network([100, 60, 10], seed=0), np.zeros((1, 100)), np.zeros((1, 10)), "mse")
    with pytest.raises(ValueError, match="X has 3 features"):
        ffnn.explain(net, [[1, 2, 3]], [[0]], "mse")
    with pytest.raises(ValueError, match="learning_rate"):
        ffnn.explain(net, [[1, 2]], [[0]], "mse", learning_rate=0)
    with pytest.raises(ValueError, match="at most 64"):
        ffnn.explain(net, np.zeros((65, 2)), np.zeros((65, 1)), "mse")


def test_text_fits_80_columns_and_summarises_large_networks():
    small = ffnn.explain(ffnn.Network([2, 3, 2], seed=0), [[0.5, -1]], [[1, 0]], "half_sse", "sheptunov").text()
    assert max(map(len, small.splitlines())) <= 80
    assert "δ₁⁽¹⁾ = (Σₘ w₁ₘ⁽²⁾·δₘ⁽²⁾)·φ′(net₁⁽¹⁾)" in small
    assert "more equations" not in small
    net = ffnn.Network([20, 12, 8], seed=0)
    X, T = _batch([20, 12, 8], "sigmoid", 0, n=4)
    text = ffnn.explain(net, X, T, "mse", "wichmann").text()
    assert "more equations in this step" in text and "more terms" in text
    assert len(text.splitlines()) < 450  # bounded: units after 4 and samples after 2 are counted, not written
    assert max(map(len, text.splitlines())) <= 80


def _page(notation="gashler", act="tanh"):
    net = ffnn.Network([2, 3, 2], act, "sigmoid", seed=0)
    X, T = np.array([[0.5, -1.0], [0.2, 0.4]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    return net, ffnn.explain(net, X, T, "half_sse", notation).html(net)


def test_the_page_is_self_contained_and_holds_every_value():
    net, page = _page()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1))
    assert len(data["weights"]) == 2 * 3 + 3 * 2
    g = net.loss_and_gradients([[0.5, -1.0], [0.2, 0.4]], [[1.0, 0.0], [0.0, 1.0]], "half_sse")[1]
    for w in data["weights"]:
        want = g.weights[w["l"]][w["k"], w["j"]]
        assert w["gradient"] == pytest.approx(want, rel=1e-12)
        assert w["paths"]["total"] == pytest.approx(want, rel=1e-11)
        assert w["fd"] == pytest.approx(want, rel=1e-7, abs=1e-11)
    assert [s["phase"] for s in data["steps"]] == ["forward"] * 2 + ["loss"] + ["backward"] * 2 + \
        ["gradient"] * 2 + ["update"] * 2


def test_the_page_escapes_what_users_name():
    evil = ffnn.Activation("</script><img src=x onerror=alert(1)>", np.tanh, lambda z: 1 - np.tanh(z) ** 2)
    _, page = _page(act=evil)
    assert "<img" not in page and "</script><" not in page.split('id="data">')[1].split("</script>")[0]
    data = json.loads(re.search(r'id="data">(.*?)</script>', page, re.S).group(1))
    assert evil.name in data["activations"]


def _browser():
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    return playwright, chromium


def test_the_page_in_a_headless_browser(tmp_path):
    playwright, chromium = _browser()
    net, page = _page("wichmann")
    path = tmp_path / "step.html"
    path.write_text(page, encoding="utf-8")
    with playwright.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"])
        except Exception as exc:  # pragma: no cover - a Chromium that cannot start here
            pytest.skip(f"Chromium does not start: {exc}")
        try:
            tab = browser.new_page()
            errors, requests = [], []
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("request", lambda r: requests.append(r.url))
            tab.goto(path.as_uri())
            assert tab.locator("svg .edge").count() == 12 and tab.locator("svg circle").count() == 7
            titles = []
            while True:
                titles.append(tab.locator("#steptitle").text_content())
                if tab.locator("#next").is_disabled():
                    break
                tab.click("#next")
            assert len(titles) == 9 and titles[0].startswith("forward") and titles[-1].startswith("update")
            tab.click("#steplist li:nth-child(4)")  # backward, layer 2: Wichmann's H⁽²⁾ with its numbers
            assert tab.locator("#steptitle").text_content() == "backward, layer 2"
            assert "H₁₁⁽²⁾ = Δ₁₁⁽²⁾·σ′₂(Z₁₁⁽²⁾) = " in tab.locator("#equations").text_content()
            for i in (0, 7, 11):
                tab.locator("svg .edge").nth(i).click(force=True)
                assert float(tab.locator("#weight").get_attribute("data-worst")) < 1e-6
                assert "path" in tab.locator("#wpaths").text_content()
            assert errors == [] and requests == [path.as_uri()]
        finally:
            browser.close()


# --- the command ---------------------------------------------------------------------------------

def _run(capsys, *args):
    code = main(["explain", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_command_default_network_text_and_page(capsys, tmp_path):
    code, out, err = _run(capsys)
    assert code == 0 and err == ""
    assert "a new network (seed 0)" in out and "network 2 → 3 → 2 (sigmoid, sigmoid), loss mse" in out
    assert max(map(len, out.splitlines())) <= 80
    page = tmp_path / "p.html"
    code, out, _ = _run(capsys, "--notation", "gashler", "--sizes", "2,2,1", "--input", "0.5,-1", "--target", "1",
                        "--html", page)
    assert code == 0 and "e₂₀ = (t₀ − y₂₀)·f′₂(x₂₀)" in out and page.read_text(encoding="utf-8").startswith("<!DOCTYPE")
    code, _, err = _run(capsys, "--html", page)
    assert code == 1 and "exists; pass --force" in err
    code, out, _ = _run(capsys, "--samples", "4", "--sample", "2", "--notation", "xing", "--lr", "0.5")
    assert code == 0 and "sample 2" in out and "η = 0.5" in out


def test_command_with_a_model(capsys, tmp_path):
    net = ffnn.Network([3, 4, 2], "tanh", "softmax", seed=0)
    ffnn.save(net, tmp_path / "m.safetensors", loss="cross_entropy")
    code, out, _ = _run(capsys, tmp_path / "m.safetensors", "--notation", "kolar")
    assert code == 0 and "loss cross_entropy" in out and "fused" in out
    cube = ffnn.Activation("cube", lambda z: z ** 3, lambda z: 3 * z ** 2)
    ffnn.save(ffnn.Network([2, 2, 1], cube, seed=0), tmp_path / "c.safetensors")
    code, _, err = _run(capsys, tmp_path / "c.safetensors")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "'cube', which is not built in" in err


@pytest.mark.parametrize("args, code, fragment", [
    (["--notation", "leibniz"], 2, "invalid choice"),
    (["m.safetensors", "--sizes", "2,2"], 2, "not both"),
    (["--sizes", "200,100,10"], 1, "explain writes out every term and takes at most"),
    (["--input", "1,2,3"], 2, "--input has 3 values"),
    (["--samples", "2", "--sample", "5"], 2, "--sample 5 is not one of the 2 samples"),
    (["--loss", "cross_entropy", "--output", "tanh"], 2, "needs outputs that are probabilities"),
])
def test_command_errors_are_one_line(capsys, args, code, fragment):
    got, out, err = _run(capsys, *args)
    assert got == code and len(err.strip().splitlines()) == 1 and fragment in err and "Traceback" not in err
