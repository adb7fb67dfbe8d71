"""ffnn.training.api and options: train()'s arguments checked before anything changes, and the data prepared."""

import numpy as np
import pytest

import ffnn
from ffnn.training.options import default_metric as _default_metric
from ffnn.training.options import dropout_rates as _dropout_rates

from .conftest import blobs as _blobs
from .conftest import same_weights as _same


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(optimizer=ffnn.SGD(0.1), epochs=0), ValueError, "epochs must be a positive integer, got 0"),
    (dict(epochs=-3), ValueError, "epochs must be a positive integer"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer, got 0"),
    (dict(batch_size=2.5), ValueError, "batch_size must be a positive integer"),
    (dict(optimizer="lbfgs"), ValueError, "unknown optimizer 'lbfgs'"),
    (dict(schedule="linear"), ValueError, "unknown schedule 'linear'"),
    (dict(validation=1.5), ValueError, r"validation fraction must be a fraction in \(0, 1\), got 1.5"),
    (dict(validation=0.0), ValueError, "validation fraction must be a fraction in"),
    (dict(l2=-1), ValueError, "l2 must be a non-negative number"),
    (dict(dropout=1.0), ValueError, r"dropout rate must be a number in \[0, 1\)"),
    (dict(early_stopping=0), ValueError, "patience must be a positive integer"),
    (dict(clip_norm=0), ValueError, "clip_norm must be a positive number"),
    (dict(checkpoint="/no/such/folder/x.ckpt"), FileNotFoundError, "folder '/no/such/folder' does not exist"),
    (dict(resume="/no/such/file.ckpt"), FileNotFoundError, "does not exist"),
    (dict(dropout=[0.1, 0.2]), ValueError, "dropout has 2 rates; the network has 1 hidden layers"),
    (dict(callbacks=[print, 3]), TypeError, "callbacks must be callables, got 3"),
    (dict(validation=(np.zeros((3, 4)),)), ValueError, r"validation must be \(X_val, T_val\) or a fraction"),
    (dict(sample_weight=np.ones(30), loss=ffnn.Loss("mine", lambda T, A: 0.0, lambda T, A: A - T)), TypeError,
     "loss 'mine' does not take sample weights"),
    (dict(sample_weight=-np.ones(30)), ValueError, "sample_weight"),
    (dict(checkpoint_every=0), ValueError, "checkpoint_every must be a positive integer"),
    (dict(metric="f1"), ValueError, "f1"),
])
def test_bad_arguments_change_nothing(kwargs, exc, match):
    X, T, _ = _blobs(30)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    before = net.copy()
    args = dict(loss="cross_entropy", epochs=2)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ffnn.train(net, X, T, **args)
    assert _same(net, before)


def test_bad_learning_rate_and_data():
    with pytest.raises(ValueError, match="learning rate must be a positive number, got -0.1"):
        ffnn.SGD(-0.1)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    X, T, _ = _blobs(30)
    with pytest.raises(ValueError, match="X has 30 samples but T has 29"):
        ffnn.train(net, X, T[:29], loss="cross_entropy")
    with pytest.raises(ValueError, match="validation data: X has 2 features"):
        ffnn.train(net, X, T, loss="cross_entropy", validation=(X[:, :2], T))


def test_dropout_rates_per_hidden_layer():
    assert _dropout_rates(0.0, 3) is None and _dropout_rates([0, 0], 2) is None
    assert _dropout_rates(0.25, 2) == [0.25, 0.25]
    assert _dropout_rates((0.0, 0.5), 2) == [0.0, 0.5]


def test_default_metric():
    soft = ffnn.Network([2, 3, 2], "tanh", "softmax", seed=0)
    ident = ffnn.Network([2, 3, 1], "tanh", "identity", seed=0)
    sig = ffnn.Network([2, 3, 1], "tanh", "sigmoid", seed=0)
    assert _default_metric(soft, ffnn.losses.get_loss("mse")) == "accuracy"
    assert _default_metric(ident, ffnn.losses.get_loss("mse")) == "r2"
    assert _default_metric(sig, ffnn.losses.get_loss("binary_cross_entropy")) == "accuracy"
    assert _default_metric(sig, ffnn.losses.get_loss("half_sse")) == "r2"


def test_an_early_stopping_object_is_copied_not_used():
    X, T, _ = _blobs(30)
    stopper = ffnn.EarlyStopping(patience=2, min_delta=0.01)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    ffnn.train(net, X, T, loss="cross_entropy", epochs=3, early_stopping=stopper)
    assert stopper.best == np.inf and stopper.wait == 0 and stopper.best_epoch is None


def test_a_validation_fraction_is_held_out_of_the_training_data():
    """Rows held out for validation are never trained on: the weights equal a run on the kept rows only."""
    from ffnn.splits import one_hot_labels, split_indices

    X, T, _ = _blobs(40)
    a = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    b = a.copy()
    ffnn.train(a, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=2, batch_size=8, shuffle=False,
               validation=0.25, seed=np.random.default_rng(4))
    kept, _ = split_indices(40, 0.25, np.random.default_rng(4), one_hot_labels(T))
    ffnn.train(b, X[kept], T[kept], loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=2, batch_size=8,
               shuffle=False)
    assert _same(a, b)


# --- data that cannot be trained on, and NumPy scalars --------------------------------------------

@pytest.mark.parametrize("kwargs,error,fragment", [
    (dict(X=np.zeros((0, 3)), T=np.zeros((0, 1))), ValueError, "X has no samples"),
    (dict(sample_weight=np.zeros(20)), ValueError, "sample_weight is zero for every training sample"),
])
def test_bad_inputs_are_clear_errors(kwargs, error, fragment):
    rng = np.random.default_rng(0)
    args = dict(X=rng.normal(size=(20, 3)), T=rng.normal(size=(20, 1)))
    args.update(kwargs)
    net = ffnn.Network([3, 4, 1], "tanh", "identity", seed=0)
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(error, match=fragment):
        ffnn.train(net, args.pop("X"), args.pop("T"), loss="mse", epochs=2, **args)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))


def test_numpy_scalars_are_accepted():
    rng = np.random.default_rng(0)
    net = ffnn.Network([3, 4, 1], "tanh", "identity", seed=0)
    h = ffnn.train(net, rng.normal(size=(20, 3)), rng.normal(size=(20, 1)), loss="mse", epochs=np.int64(2),
                   clip_norm=np.float32(1.0), l2=np.float64(0.01))
    assert len(h) == 2


def test_every_option_of_train_is_declared_once_as_a_setting():
    """train()'s options that shape the run are exactly the fields of Settings (the data, the seed, the
    resume file and the communicator are the run's, not options); their defaults live in train()."""
    import inspect

    from ffnn.training.api import settings_for
    from ffnn.training.options import Settings

    params = inspect.signature(ffnn.train).parameters
    run_params = {"net", "X", "T", "validation", "seed", "resume", "sample_weight", "comm"}
    assert set(params) - run_params == set(Settings.names())
    net = ffnn.Network([3, 4, 2], "relu", "softmax")
    s = settings_for(net, loss="mse", epochs=3)
    assert (s.loss.name, s.epochs, s.batch_size, s.shuffle) == ("mse", 3, params["batch_size"].default, True)
    with pytest.raises(TypeError, match="unknown training options: epoch"):
        settings_for(net, loss="mse", epoch=3)
