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
