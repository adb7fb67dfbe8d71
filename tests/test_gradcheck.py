import numpy as np
import pytest

import ffnn


@pytest.mark.parametrize("hidden,out,loss", [
    ("sigmoid", "sigmoid", "half_sse"), ("tanh", "softmax", "cross_entropy"),
    ("gelu", "identity", "mse"), ("softplus", "sigmoid", "binary_cross_entropy"), ("elu", "tanh", "sse"),
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backprop_passes_against_finite_differences(hidden, out, loss, dtype, xp):
    net = ffnn.Network([3, 5, 4, 3], hidden, out, seed=3, dtype=dtype, xp=xp)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 3))
    T = np.eye(3)[[0, 2, 1, 1]] if out in ("softmax", "sigmoid") else rng.normal(size=(4, 3))
    report = ffnn.gradcheck(net, xp.asarray(X), xp.asarray(T), loss)
    assert report.passed, str(report)
    assert set(report.errors) == {"W[1]", "W[2]", "W[3]", "b[1]", "b[2]", "b[3]", "X"}
    assert report.worst < 1e-7
    assert "PASSED" in str(report)


def test_fails_on_a_wrong_gradient():
    """A loss whose stated gradient is off by a factor is caught: the check can fail."""
    wrong = ffnn.Loss("wrong", lambda A, T: np.sum((A - T) ** 2), lambda A, T: 1.01 * 2 * (A - T))
    net = ffnn.Network([2, 3, 1], "tanh", seed=0)
    report = ffnn.gradcheck(net, np.ones((2, 2)), np.zeros((2, 1)), wrong)
    assert not report.passed
    assert 4e-3 < report.worst < 2e-2
    assert "FAIL" in str(report)


def test_large_arrays_are_checked_on_a_random_sample_that_still_finds_a_wrong_rule():
    net = ffnn.Network([40, 30, 2], "tanh", "softmax", seed=0)
    rng = np.random.default_rng(1)
    X, T = rng.normal(size=(3, 40)), np.eye(2)[[0, 1, 1]]
    report = ffnn.gradcheck(net, X, T, "cross_entropy", max_entries=25)
    assert report.passed and report.checked == {"W[1]": (25, 1200), "W[2]": (25, 60), "b[1]": (25, 30),
                                                "b[2]": (2, 2), "X": (25, 120)}
    assert "(25 of 1200 entries, at random)" in str(report)
    wrong = ffnn.Loss("wrong", lambda A, T: np.sum((A - T) ** 2), lambda A, T: 1.01 * 2 * (A - T))
    assert not ffnn.gradcheck(net, X, T, wrong, max_entries=25).passed
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_entries must be a positive integer"):
            ffnn.gradcheck(net, X, T, "cross_entropy", max_entries=bad)


def test_entries_whose_steps_cross_a_relu_kink_are_left_out_not_failed():
    """z[1][0] = 1e-5: a step of h = 1e-4 in b[1][0] (or in x, which W[1] carries to z) moves it across
    relu's kink at 0, where the finite difference averages two slopes; those entries are counted,
    not compared (a step in W[1] moves z by h · 1e-5 and crosses nothing)."""
    params = lambda: ([np.array([[1.0, 1.0]]), np.array([[2.0], [3.0]])], [np.array([0.0, 0.5]), np.array([0.0])])
    X, T = np.array([[1e-5]]), np.array([[1.0]])
    report = ffnn.gradcheck(ffnn.Network.from_parameters(*params(), ["relu", "identity"]), X, T, "mse")
    assert report.passed and report.at_kinks == {"W[1]": 0, "W[2]": 0, "b[1]": 1, "b[2]": 0, "X": 1}
    assert report.checked["b[1]"] == (1, 2) and "1 left out at a kink" in str(report)
    smooth = ffnn.gradcheck(ffnn.Network.from_parameters(*params(), ["tanh", "identity"]), X, T, "mse")
    assert smooth.passed and set(smooth.at_kinks.values()) == {0}


def test_a_loss_that_is_not_finite_has_no_gradient_to_check():
    net = ffnn.Network([2, 3, 2], "relu", "softmax", seed=0)
    net.weights[1][...] = 1e308
    with pytest.raises(ValueError, match="the loss is nan at this network's weights"):
        ffnn.gradcheck(net, np.ones((2, 2)), np.eye(2), "cross_entropy")


def test_readme_example_gashlers_weight_173():
    net = ffnn.Network([4, 8, 6, 5, 3, 2], "sigmoid", "sigmoid", seed=0)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(10, 4)), rng.uniform(size=(10, 2))
    J, grads = net.loss_and_gradients(X, T, "half_sse")
    report = ffnn.gradcheck(net, X, T, "half_sse")
    assert report.passed and grads.weights[1].shape == (4, 8)
