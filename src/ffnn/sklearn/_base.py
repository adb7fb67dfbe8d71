"""What ffnn's two scikit-learn estimators share: declarative parameter constraints, initialisation,
scikit-learn's fit loops (stochastic and L-BFGS) with ffnn computing every forward pass, gradient and
update, and the stopping rule and learning-rate schedules. See :mod:`ffnn.sklearn` for the public
estimators.

The stochastic loop takes scikit-learn's steps, one for one: the same batches (``gen_batches`` over
indices shuffled as ``sklearn.utils.shuffle`` shuffles them, from the estimator's ``RandomState``), the same
early-stopping split (``train_test_split``, stratified for one-column targets), the L2 term scaled by
each batch's own size or sum of sample weights, the learning rate changed at the end of each epoch,
and the same stopping rule; ffnn's Network, fast path and optimisers compute each step.
"""

from __future__ import annotations

import time
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.special import xlogy
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import activations as _act
from .. import losses as _losses
from .._array import array_namespace, asarray_on, to_numpy
from ..datasets import ArrayRows
from ..history import History
from ..network import Network
from ..optim import SGD, Adam, AdamW, Quickprop, RMSprop, Rprop
from .. import updates
from ..training import numpy_workspace as _fast
from ..training import compiled_engine as _compiled
from ..training.engines import CoreEngine, NumpyEngine, interleave
from ..training.run import keep_state_with
from . import _device

try:  # scikit-learn's callback API (sklearn.callback), where the installed version has it
    from sklearn.callback import CallbackSupportMixin as _CallbackSupport
except ImportError:  # pragma: no cover - depends on the installed scikit-learn
    class _CallbackSupport:
        pass

# scikit-learn's names for ffnn's, where they differ ({"logistic": "sigmoid"}), as the activations carry them
_SK_ACTIVATIONS = {a.sklearn_name: a.name for a in _act.ACTIVATIONS.values() if a.sklearn_name not in (None, a.name)}
_STOCHASTIC = ("sgd", "adam", "adamw", "rmsprop")
_FULL_BATCH = ("rprop", "quickprop")  # ffnn's batch methods: the epoch loop with one batch, the whole set
_EPOCHS = _STOCHASTIC + _FULL_BATCH  # the solvers that train in epochs (all but 'lbfgs')


def _exp(z):
    return np.exp(z)


def _exp_derivative_from_output(a):
    return a


# The Poisson regressor's output activation, a[L] = exp(z[L]) (σ′ = a).
EXP = _act.Activation("exp", _exp, _exp, derivative_from_output=_exp_derivative_from_output, hidden_ok=False)


class _PoissonLoss(_losses.Loss):
    """Half the Poisson deviance (:data:`ffnn.losses.poisson`, scikit-learn's MLPRegressor(loss="poisson")),
    with its canonical pair, the exp output:

        J = Σ_k  Σ_n w_n [T log(T/A) − T + A]_nk / Σ_n w_n         (w_n = 1 without weights)

    ∂J/∂A = (1 − T/A) w / Σw; with the exp output, δ[L] = (A − T) w / Σw.
    """

    weighted = True

    def __init__(self):
        super().__init__("poisson", self.value, self.gradient)

    @staticmethod
    def _total(A, w):
        return A.shape[0] if w is None else np.sum(w)

    def value(self, A, T, sample_weight=None):
        return _losses.poisson.value(A, T, sample_weight)

    def gradient(self, A, T, sample_weight=None):
        return _losses.poisson.gradient(A, T, sample_weight)

    def fused(self, activation):
        return _FusedPoisson(self) if activation == EXP else None

    def __reduce__(self):
        return (_PoissonLoss, ())


class _FusedPoisson:
    """exp + poisson: J from z (T log T − T z − T + e^z), δ[L] = (A − T) w / Σw."""

    def __init__(self, loss):
        self.loss = loss

    def value(self, z, T, sample_weight=None):
        E = xlogy(T, T) - T * z - T + np.exp(z)
        if sample_weight is not None:
            E = E * sample_weight[:, None]
        return np.sum(E) / self.loss._total(z, sample_weight)

    def delta(self, z, A, T, sample_weight=None):
        D = (A - T) / self.loss._total(A, sample_weight)
        return D if sample_weight is None else D * sample_weight[:, None]


def _activation_ok(value):
    names = value if isinstance(value, (list, tuple)) else [value]
    for a in names:
        if isinstance(a, _act.Activation):
            continue
        if not isinstance(a, str):
            return False
        try:
            _act.get_activation(_SK_ACTIVATIONS.get(a, a))
        except ValueError:
            return False
    return True


class _ActivationConstraint(Options):
    """A name or Activation, or a list of them (one per hidden layer), in scikit-learn's declarative
    validation (an ``Options`` subclass, the kind of constraint its validator accepts)."""

    def __init__(self):
        super().__init__(object, set())

    def is_satisfied_by(self, val):
        return _activation_ok(val)

    def __str__(self):
        names = ", ".join(repr(n) for n in sorted(set(_act.ACTIVATIONS) - {"softmax"}))
        return f"an activation name ({names}), an ffnn.Activation, or a list of them (one per hidden layer)"


CONSTRAINTS = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [_ActivationConstraint()],
    "solver": [StrOptions({"lbfgs", "sgd", "adam", "adamw", "rmsprop", "rprop", "quickprop"})],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "l1": [Interval(Real, 0, None, closed="left")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
    "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
    "power_t": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "shuffle": ["boolean"],
    "random_state": ["random_state"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "verbose": ["verbose", StrOptions({"progress"})],
    "warm_start": ["boolean", StrOptions({"keep_optimizer"})],
    "momentum": [Interval(Real, 0, 1, closed="both")],
    "nesterovs_momentum": ["boolean"],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "beta_1": [Interval(Real, 0, 1, closed="left")],
    "beta_2": [Interval(Real, 0, 1, closed="left")],
    "epsilon": [Interval(Real, 0, None, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
    "max_fun": [Interval(Integral, 1, None, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
    "dtype": [StrOptions({"float32", "float64"}), None],
    "callbacks": [list, tuple, None],
}


class _Optimizer:
    """scikit-learn's optimiser protocol (``learning_rate``, ``iteration_ends``,
    ``trigger_stopping``) around an ffnn optimiser and its explicit state.

    A new one is made by every ``fit`` and by the first ``partial_fit``; later ``partial_fit`` calls
    keep it (its state, step count and learning rate), as scikit-learn does.
    """

    def __init__(self, opt, params, schedule, power_t):
        self.opt = opt
        self.state = opt.init(params)
        self.learning_rate_init = opt.lr
        self.learning_rate = float(opt.lr)
        self.schedule, self.power_t = schedule, power_t

    def iteration_ends(self, time_step):
        """'invscaling': η = η₀ / (t + 1)^power_t, t the samples seen so far (set after each epoch)."""
        if self.schedule == "invscaling":
            self.learning_rate = float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """True to stop; 'adaptive' divides the learning rate by 5 instead, until it is ≤ 1e-6."""
        if self.schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False


def _copy(a):
    """A copy of a parameter array, NumPy or PyTorch (fitted on a device under array-API dispatch)."""
    return a.copy() if isinstance(a, np.ndarray) else array_namespace(a).asarray(a, copy=True)


def _on_network(net, *arrays):
    """The arrays in the network's namespace and on its device (None stays None)."""
    place = net.placement()
    if place is None:
        return arrays
    return tuple(None if a is None else asarray_on(net.xp, np.asarray(a), net.weights[1].dtype, place)
                 for a in arrays)


def _dense(X):
    return X.toarray() if sp.issparse(X) else X


def _metadata(sample_weight):
    return None if sample_weight is None else {"sample_weight": sample_weight}


def _progress_bar(total):
    """A tqdm progress bar over epochs, or None when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return None
    return tqdm(total=total, unit="epoch", dynamic_ncols=True)


class _Rows(ArrayRows):
    """The estimator's training arrays as the gradient engines read them: rows by index array (as
    :class:`ffnn.datasets.ArrayRows`) or by slice (scikit-learn's batches without shuffling); X dense,
    sparse or a PyTorch tensor, whose batches the core takes as ``X[idx]``."""

    def gather(self, idx, X_out, T_out):  # the NumPy fast path: dense NumPy arrays
        if isinstance(idx, slice):
            X_out[...] = self.X[idx]
            T_out[...] = self.T[idx]
        else:
            super().gather(idx, X_out, T_out)

    def count(self, idx):
        return len(range(*idx.indices(self.n))) if isinstance(idx, slice) else len(idx)

    def batch(self, idx):
        return self.X[idx], self.T[idx]


class _Stepper:
    """One minibatch step: J and the gradients from ffnn's gradient engines (the NumPy fast path where
    it applies, the array core otherwise), then the update chain of :mod:`ffnn.updates` with
    scikit-learn's per-batch L2 scaling (:class:`ffnn.updates.PerBatchL2`) and the optimiser:

        J_B = J(T_B, a[L]) · c + (α / 2 s_B) Σ_l Σ W[l]² + λ₁ Σ_l Σ|W[l]|
        g   = ∂J(T_B, a[L])/∂θ + (α / s_B) W + λ₁ sign(W)

    with s_B the batch's size, or its sum of sample weights, and c = 1/K for 'squared_error' with K
    outputs (scikit-learn reports the squared error averaged over the outputs; its gradient is that
    of the sum over the outputs, and so is this one).
    """

    def __init__(self, net, loss, *, alpha, l1, rates, rng, report_scale, weighted, sparse=False):
        self.net, self.report_scale = net, report_scale
        self.params = net.parameters()
        self.chain = updates.Chain(updates.PerBatchL2(alpha, l1))  # the optimiser joins it at each step
        self.rates, self.rng, self.loss = rates, rng, loss
        # sparse X goes through the core, whose first layer's products (X W[1], Xᵀ δ[1]) take it as it is
        self.fast = _fast.supports(net, loss, rates, None) and not weighted and not sparse
        self.engine = None
        self.compiled = False if sparse else None  # the compiled loop's engine, once made; False: it cannot run

    def _engine(self, X, T, w):
        engine = self.engine
        if engine is None:
            kind = NumpyEngine if self.fast else CoreEngine
            kw = {} if self.fast else dict(dropout=self.rates, rng=self.rng)
            engine = self.engine = kind(self.net, self.loss, _Rows(X, T, w), self.chain, **kw)
        rows = engine.rows
        if rows.X is not X or rows.T is not T or rows.w is not w:
            engine.rows = _Rows(X, T, w)
        return engine

    def _loss_and_gradients(self, X, T, w, idx):
        """(J_B with the penalty, ∂J/∂θ of the loss alone as [dW1, db1, …], s_B) on the rows ``idx``."""
        engine = self._engine(X, T, w)
        J, dW, db = engine.compute(idx, False)
        wb = engine.rows.weights(idx)
        s_b = engine.rows.count(idx) if wb is None else float(wb.sum())
        return J * self.report_scale + self.chain.value(self.net.weights, s_b), interleave(dW, db), s_b

    def gradients(self, X, T, w, idx):
        """(J_B, ∂J_B/∂θ as [dW1, db1, …]) on the rows ``idx``: the chain without its optimiser
        (L-BFGS takes its own steps)."""
        J, grads, s_b = self._loss_and_gradients(X, T, w, idx)
        return J, self.chain.gradients(grads, self.params, s_b)

    def epoch(self, X, T, w, order, batch_size, optimizer):
        """Σ_B J_B·|B| over the epoch's minibatches of ``order``, all taken by the compiled loop (one call
        for the full batches, one for a short last batch) with scikit-learn's learning rate, which is
        constant within an epoch; None where that loop cannot run (the caller then steps batch by batch)."""
        compiled = self._compiled_engine(X, T, w, optimizer)
        if compiled is None:
            return None
        n = X.shape[0]
        full = n // batch_size
        total = 0.0
        for start, m, count in ((0, batch_size, full), (full * batch_size, n - full * batch_size, 1)):
            done = 0
            while done < count and m:  # in chunks of about 50 ms: Ctrl-C (KeyboardInterrupt) lands between them
                k = min(count - done, compiled.steps_per_call)
                t0 = time.perf_counter()
                total += compiled.steps(order, start + done * m, m, [optimizer.learning_rate] * k, optimizer.state)[1]
                compiled.pace(time.perf_counter() - t0, k)
                done += k
        return total

    def _compiled_engine(self, X, T, w, optimizer):
        if self.rates is not None and self.rng is None or self.compiled is False:
            return None
        self.chain.optimizer = optimizer.opt
        engine = self.compiled
        if engine is None or engine.rows.X is not X or engine.rows.T is not T or engine.rows.w is not w \
                or engine.chain.optimizer is not optimizer.opt:
            rows = _Rows(X, T, w)
            plan, _ = _compiled.plan(self.net, self.loss, self.chain, rows, self.rates)
            if plan is None:
                self.compiled = False
                return None
            engine = self.compiled = _compiled.CompiledEngine(
                self.net, self.loss, rows, updates.Chain(self.chain.penalty, None, optimizer.opt), rng=self.rng,
                run_plan=plan, check=False, report_scale=self.report_scale)
        return engine

    def __call__(self, X, T, w, idx, optimizer):
        """One step: the gradients, then the whole chain — the penalty and ``optimizer``'s update
        with scikit-learn's current learning rate."""
        J, grads, s_b = self._loss_and_gradients(X, T, w, idx)
        self.chain.optimizer = optimizer.opt
        self.chain.apply(grads, optimizer.state, self.params, optimizer.learning_rate, s_b)
        return J


class BaseMLP(_CallbackSupport, BaseEstimator):
    _parameter_constraints = CONSTRAINTS
    _train_device = None  # set while fitting on PyTorch tensors (see ffnn.sklearn._device)

    def __init_subclass__(cls, **kwargs):
        # fit/partial_fit/predict/predict_proba accept PyTorch tensors under array-API dispatch
        super().__init_subclass__(**kwargs)
        for name in ("fit", "partial_fit", "predict", "predict_proba"):
            attr = vars(cls).get(name)
            if callable(attr):
                setattr(cls, name, _device.device_aware(attr, fits=name.endswith("fit")))
            elif callable(getattr(attr, "fn", None)):  # scikit-learn's available_if descriptor
                attr.fn = _device.device_aware(attr.fn, fits=name.endswith("fit"))

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, l1=0.0,
                 dropout=0.0, weight_decay=0.01, dtype=None, callbacks=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.l1 = l1
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.dtype = dtype
        self.callbacks = callbacks

    # --- the ffnn network behind coefs_ and intercepts_ ----------------------------------------------

    @property
    def network_(self):
        """The fitted :class:`ffnn.Network`. It holds the very arrays of ``coefs_`` and ``intercepts_``
        (training updates them in place); after ``coefs_`` or ``intercepts_`` is assigned, the next
        access builds the network from the new arrays."""
        coefs, intercepts = self.coefs_, self.intercepts_
        net = self.__dict__.get("_network")
        if (net is not None and len(net.weights) == len(coefs)
                and all(a is b for a, b in zip(net.weights, coefs))
                and all(a is b for a, b in zip(net.biases, intercepts))):
            return net
        acts = self._hidden_activations(len(coefs) - 1) + [self._output_activation()]
        dtype = np.asarray(coefs[0]).dtype
        net = Network.from_parameters(coefs, intercepts, acts,
                                      dtype=dtype.name if dtype in (np.float32, np.float64) else "float64")
        for l, (W, b) in enumerate(zip(coefs, intercepts), start=1):  # the given arrays themselves, when they fit
            if isinstance(W, np.ndarray) and W.dtype == net.weights[l].dtype and W.flags.c_contiguous:
                net.weights[l] = W
            if isinstance(b, np.ndarray) and b.dtype == net.biases[l].dtype and b.flags.c_contiguous:
                net.biases[l] = b
        self.network_ = net
        return net

    @network_.setter
    def network_(self, net):
        # the estimator's lists hold the network's arrays, so that in-place training updates both
        self.coefs_, self.intercepts_ = net.weights.to_list(), net.biases.to_list()
        self._network = net
        self.n_layers_ = net.n_layers + 1
        out = net.activations[-1].name
        self.out_activation_ = {"sigmoid": "logistic"}.get(out, out)

    def _output_activation(self):
        return {"logistic": "sigmoid", "exp": EXP}.get(self.out_activation_, self.out_activation_)

    # --- shared machinery ---------------------------------------------------------------------------

    def _hidden(self):
        h = self.hidden_layer_sizes
        h = list(h) if hasattr(h, "__iter__") else [h]
        if np.any(np.array(h) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {h}.")
        return h

    def _hidden_activations(self, n_hidden):
        acts = self.activation if isinstance(self.activation, (list, tuple)) else [self.activation] * n_hidden
        if len(acts) != n_hidden:
            raise ValueError(f"activation has {len(acts)} entries for {n_hidden} hidden layers")
        return [a if isinstance(a, _act.Activation) else _SK_ACTIVATIONS.get(a, a) for a in acts]

    def _loss_function(self):
        """The ffnn loss this estimator trains with, and the factor on its reported value."""
        name = self._loss_name()
        if name == "poisson":
            return _PoissonLoss(), 1.0
        scale = 1.0 / self.n_outputs_ if getattr(self, "loss", None) == "squared_error" else 1.0
        clipped = {"cross_entropy": _losses.sklearn_log_loss, "binary_cross_entropy": _losses.sklearn_binary_log_loss}
        return clipped.get(name) or _losses.get_loss(name), scale

    def _make_optimizer(self, params):
        lr = self.learning_rate_init
        if self.solver == "sgd":
            opt = SGD(lr, momentum=self.momentum, nesterov=self.nesterovs_momentum and self.momentum > 0)
            return _Optimizer(opt, params, self.learning_rate, self.power_t)
        if self.solver == "adam":
            opt = Adam(lr, self.beta_1, self.beta_2, self.epsilon, step_size_correction=True)
        elif self.solver == "adamw":
            opt = AdamW(lr, self.beta_1, self.beta_2, self.epsilon, self.weight_decay, step_size_correction=True)
        elif self.solver == "rprop":
            opt = Rprop(lr)
        elif self.solver == "quickprop":
            opt = Quickprop(lr)
        else:
            opt = RMSprop(lr, eps=self.epsilon)
        return _Optimizer(opt, params, "constant", self.power_t)

    def _init_coef(self, fan_in, fan_out, dtype):
        """Glorot uniform with bound √(6/(fan_in + fan_out)) (√(2/…) for 'logistic'), the bias drawn
        the same way, from the estimator's RandomState: scikit-learn's own starting weights."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
        intercept = self._random_state.uniform(-bound, bound, fan_out)
        return coef.astype(dtype, copy=False), intercept.astype(dtype, copy=False)

    def _initialize(self, T, layer_units, dtype):
        from .._checks import check_parameter_count

        check_parameter_count(layer_units, np.dtype(dtype).itemsize)  # before any allocation
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = T.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation_name()
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            coef, intercept = self._init_coef(fan_in, fan_out, dtype)
            self.coefs_.append(coef)
            self.intercepts_.append(intercept)
        self._network = None
        self._best_coefs = [_copy(c) for c in self.coefs_]
        self._best_intercepts = [_copy(i) for i in self.intercepts_]
        if self.solver in _EPOCHS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.validation_loss_curve_ = [] if self.early_stopping else None
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _input_dtype(self):
        return (np.float64, np.float32) if self.dtype is None else self.dtype

    def _fit(self, X, y, sample_weight=None, incremental=False, *, X_val=None, y_val=None, epochs=1):
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        if (X_val is None) != (y_val is None):
            raise ValueError("X_val and y_val must be given together")
        if isinstance(epochs, bool) or not isinstance(epochs, Integral) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
        hidden = self._hidden()
        self._hidden_activations(len(hidden))
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._validate_sample_weight(X, sample_weight, y)
        T = self._targets_for(y, X.dtype)
        val = None if X_val is None else self._validation_data(X_val, y_val, X.dtype)
        self.n_outputs_ = T.shape[1]
        layer_units = [X.shape[1], *hidden, self.n_outputs_]
        # warm_start="keep_optimizer": a later fit continues the optimiser, the schedule and the
        # random stream (shuffles, dropout), so that fit(k) + fit(m) takes the steps of fit(k + m)
        continuing = (self.warm_start == "keep_optimizer" and not first_pass and not incremental
                      and getattr(self, "_optimizer", None) is not None
                      and isinstance(getattr(self, "_random_state", None), np.random.RandomState))
        if not continuing:
            self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(T, layer_units, X.dtype)
        stochastic = self.solver in _EPOCHS
        ctx = self._sklearn_callback_context(X, y, sample_weight, (epochs if incremental else self.max_iter)
                                             if stochastic else 0)
        if stochastic:
            self._fit_stochastic(X, T, sample_weight, incremental, val=val, epochs=epochs, continuing=continuing,
                                 sk_callbacks=None if ctx is None else (ctx, y))
        else:
            self._fit_lbfgs(X, T, sample_weight)
        if ctx is not None:
            ctx.call_on_fit_task_end(estimator=self, X=X, y=y, metadata=_metadata(sample_weight),
                                     reconstruction_attributes=self._snapshot())
        if not all(np.isfinite(to_numpy(p)).all() for p in [*self.coefs_, *self.intercepts_]):
            raise ValueError("Solver produced non-finite parameter weights. The input data may contain large "
                             "values and need to be preprocessed.")
        return self

    def _sklearn_callback_context(self, X, y, sample_weight, n_epochs):
        """scikit-learn's callback context for this fit (one subtask per epoch), or None when no
        scikit-learn callback is set here or propagated from a meta-estimator."""
        if not (getattr(self, "_skl_callbacks", None) or hasattr(self, "_parent_callback_ctx")):
            return None
        ctx = self._init_callback_context(max_subtasks=n_epochs)
        ctx.call_on_fit_task_begin(estimator=self, X=X, y=y, metadata=_metadata(sample_weight))
        return ctx

    def _snapshot(self):
        """The fitted attributes that make a copy of this estimator predict as it does now."""
        return {"coefs_": [_copy(c) for c in self.coefs_], "intercepts_": [_copy(b) for b in self.intercepts_],
                "_network": None}

    def _validation_data(self, X_val, y_val, dtype):
        """The user's validation set, checked like the training data: (X, T, y, sample_weight=None)."""
        X_val, y_val = validate_data(self, X_val, y_val, reset=False, accept_sparse=["csr", "csc"], multi_output=True,
                                     dtype=dtype, y_numeric=not isinstance(self, ClassifierMixin))
        if y_val.ndim == 2 and y_val.shape[1] == 1:
            y_val = y_val[:, 0]
        if isinstance(self, ClassifierMixin):
            unknown = np.setdiff1d(np.unique(y_val), self.classes_) if y_val.ndim == 1 else []
            if len(unknown):
                raise ValueError(f"y_val has classes not in the training data: {unknown}")
        return X_val, self._targets_for(y_val, dtype), y_val, None

    def _dropout_rates(self, n_hidden):
        rates = list(self.dropout) if isinstance(self.dropout, (list, tuple, np.ndarray)) else [self.dropout] * n_hidden
        if len(rates) != n_hidden or not all(0 <= r < 1 for r in rates):
            raise ValueError(f"dropout must be a rate in [0, 1) or one per hidden layer ({n_hidden}), got {self.dropout}")
        return [float(r) for r in rates] if any(r > 0 for r in rates) else None

    def _fit_stochastic(self, X, T, sample_weight, incremental, *, val=None, epochs=1, continuing=False,
                        sk_callbacks=None):
        net, params, optimizer = self._network_and_optimizer(incremental, continuing)
        early_stopping = self.early_stopping
        X_train, T_train, w_train = X, T, sample_weight
        if early_stopping and val is None:
            X_train, T_train, w_train, val = self._early_stopping_split(X, T, sample_weight, continuing)
        self._init_validation_curves(val)
        n = X_train.shape[0]
        batch_size = self._batch_size_for(n)
        loss, scale = self._loss_function()
        if net.placement() is not None:  # the data go to the network's device once
            X_train, T_train, w_train = _on_network(net, _dense(X_train), T_train, w_train)
            if val is not None:
                val = (*_on_network(net, _dense(val[0]), val[1]), val[2], *_on_network(net, val[3]))
        step = self._stepper(net, loss, scale, w_train is not None, sp.issparse(X_train), continuing)
        callbacks = list(getattr(self, "callbacks", None) or ())
        history = History(metric=("accuracy" if isinstance(self, ClassifierMixin) else "r2") if val is not None else "",
                          loss_includes_penalty=self.alpha > 0 or self.l1 > 0)
        n_epochs = epochs if incremental else self.max_iter
        bar = _progress_bar(n_epochs) if self.verbose == "progress" else None
        lines = bool(self.verbose) and bar is None  # scikit-learn's lines (and where tqdm is missing)
        not_converged = False
        keep = self.warm_start == "keep_optimizer" and not incremental
        sample_idx = self._start_order(n, params, continuing)
        try:
            self.n_iter_ = 0
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                for _ in range(n_epochs):
                    if sk_callbacks is not None:
                        epoch_ctx = sk_callbacks[0].subcontext(task_name="epoch")
                        epoch_ctx.call_on_fit_task_begin(estimator=self, X=X, y=sk_callbacks[1],
                                                         metadata=_metadata(sample_weight))
                    t0 = time.perf_counter()
                    lr = optimizer.learning_rate
                    sample_idx = self._epoch(step, (X_train, T_train, w_train), sample_idx, batch_size, optimizer)
                    if lines:
                        print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                    score = val_loss = None
                    if val is not None:
                        score, val_loss = self._validate_epoch(net, val, loss, scale)
                        self.validation_scores_.append(score)
                        self.validation_loss_curve_.append(val_loss)
                        if lines and early_stopping:
                            print("Validation score: %f" % score)
                    self._update_no_improvement_count(early_stopping, score)
                    optimizer.iteration_ends(self.t_)
                    history.append(epoch=len(self.loss_curve_), loss=self.loss_, val_loss=val_loss, val_metric=score,
                                   lr=lr, time=time.perf_counter() - t0)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{self.loss_:.4g}", **({} if score is None else {"val": f"{score:.4g}"}))
                    stop = self._stopping_rule(optimizer, lines)
                    for cb in callbacks:
                        if cb(net, history) is True:
                            stop = history.stopped_early = True
                    if sk_callbacks is not None and epoch_ctx.call_on_fit_task_end(
                            estimator=self, X=X, y=sk_callbacks[1], metadata=_metadata(sample_weight),
                            reconstruction_attributes=self._snapshot()):
                        stop = True
                    if stop:
                        break
                    not_converged = not incremental and self.n_iter_ == self.max_iter
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            if bar is not None:
                bar.close()  # before any warning, which would otherwise break the bar's line
        if not_converged:
            kind = {"rprop": "Rprop", "quickprop": "Quickprop"}.get(self.solver, "Stochastic Optimizer")
            warnings.warn(f"{kind}: Maximum iterations ({self.max_iter}) reached and the "
                          f"optimization hasn't converged yet.", ConvergenceWarning)
        self._end_fit(net, params, sample_idx, keep)

    def _network_and_optimizer(self, incremental, continuing):
        """The network (moved to the caller's device under array-API dispatch, where it stays), its
        parameters, and the optimiser: new for each fit and the first partial_fit, else kept."""
        net = self.network_
        if self._train_device is not None and net.placement() != self._train_device:
            net = self.network_ = net.to(device=self._train_device)
        params = net.parameters()
        if getattr(self, "_optimizer", None) is not None:
            keep_state_with(self._optimizer.state, params)  # a kept optimiser follows its network
        if not continuing and (not incremental or getattr(self, "_optimizer", None) is None):
            self._optimizer = self._make_optimizer(params)
        return net, params, self._optimizer

    def _early_stopping_split(self, X, T, sample_weight, continuing):
        """scikit-learn's validation split for early stopping: (X, T, w) to train on and the validation
        tuple. A kept optimiser ('keep_optimizer') keeps the first fit's split."""
        if not continuing:
            self._split_state = self._random_state.get_state()
        split_rs = np.random.RandomState()
        split_rs.set_state(self._split_state)
        # stratified for one column of class indicators, as scikit-learn (not for multilabel targets)
        stratify = T.astype(bool) if isinstance(self, ClassifierMixin) and self.n_outputs_ == 1 else None
        arrays = (X, T) if sample_weight is None else (X, T, sample_weight)
        parts = train_test_split(*arrays, random_state=split_rs, test_size=self.validation_fraction,
                                 stratify=stratify)
        if not continuing:
            self._random_state.set_state(split_rs.get_state())
        X_train, X_val, T_train, T_val = parts[:4]
        w_train, w_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                             "your dataset.")
        return X_train, T_train, w_train, (X_val, T_val, self._labels_for(T_val), w_val)

    def _init_validation_curves(self, val):
        if val is not None:
            if self.validation_scores_ is None:
                self.validation_scores_ = []
            if getattr(self, "validation_loss_curve_", None) is None:
                self.validation_loss_curve_ = []
        else:
            self.validation_loss_curve_ = getattr(self, "validation_loss_curve_", None)

    def _batch_size_for(self, n):
        if self.solver in _FULL_BATCH:
            if self.batch_size != "auto" and self.batch_size < n:
                raise ValueError(f"solver={self.solver!r} takes full-batch steps; batch_size={self.batch_size} would "
                                 f"take minibatches of the {n} training samples: leave batch_size='auto'")
            return n
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n))

    def _stepper(self, net, loss, scale, weighted, sparse, continuing):
        rates = self._dropout_rates(len(net.sizes) - 2)
        if rates and not (continuing and getattr(self, "_dropout_rng", None) is not None):
            self._dropout_rng = np.random.default_rng(self._random_state.randint(np.iinfo(np.int32).max))
        return _Stepper(net, loss, alpha=self.alpha, l1=self.l1, rates=rates, rng=self._dropout_rng if rates else None,
                        report_scale=scale, weighted=weighted, sparse=sparse)

    def _start_order(self, n, params, continuing):
        """The sample order the first epoch shuffles. Continuing ('keep_optimizer'): each epoch shuffles
        the previous epoch's order, and early stopping restored its best weights, so the fit goes on
        from the order and the weights where the last fit left off."""
        sample_idx = np.arange(n, dtype=int)
        if continuing:
            last = getattr(self, "_sample_idx", None)
            if last is not None and len(last) == n:
                sample_idx = last
            resume = getattr(self, "_resume_params", None)
            if resume is not None:
                for p, r in zip(params, resume):
                    p[...] = r
        return sample_idx

    def _epoch(self, step, data, sample_idx, batch_size, optimizer):
        """One pass over the (shuffled) samples in minibatches; sets loss_ (the mean of the batches'
        losses weighted by their sizes), n_iter_, t_ and loss_curve_; returns the epoch's order."""
        n = data[0].shape[0]
        if self.shuffle:
            # scikit-learn's shuffle(sample_idx, random_state=…), drawn as its resample draws it (the same
            # permutation from the same RandomState) without its input checks, once per epoch
            perm = np.arange(n)
            self._random_state.shuffle(perm)
            sample_idx = sample_idx[perm]
        accumulated = step.epoch(*data, sample_idx if self.shuffle else np.arange(n), batch_size, optimizer)
        if accumulated is None:  # the interpreted loop, batch by batch
            accumulated = 0.0
            for batch in gen_batches(n, batch_size):
                idx = sample_idx[batch] if self.shuffle else batch
                accumulated += float(step(*data, idx, optimizer)) * (batch.stop - batch.start)
        self.n_iter_ += 1
        self.loss_ = accumulated / n
        self.t_ += n
        self.loss_curve_.append(self.loss_)
        return sample_idx

    def _stopping_rule(self, optimizer, verbose):
        """scikit-learn's rule: after more than n_iter_no_change epochs without improvement, stop (or,
        for 'adaptive', divide the learning rate by 5 and count again)."""
        if self._no_improvement_count <= self.n_iter_no_change:
            return False
        what = "Validation score did not improve" if self.early_stopping else "Training loss did not improve"
        msg = f"{what} more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
        if optimizer.trigger_stopping(msg, verbose):
            return True
        self._no_improvement_count = 0
        return False

    def _end_fit(self, net, params, sample_idx, keep):
        """What a later fit continues from ('keep_optimizer'), and early stopping's best weights."""
        self._sample_idx = sample_idx if keep else None
        self._resume_params = [_copy(p) for p in params] if keep and self.early_stopping else None
        if self.early_stopping:
            for p, best in zip([*net.weights, *net.biases], [*self._best_coefs, *self._best_intercepts]):
                p[...] = best
            if not keep:
                # scikit-learn's lists now are the best ones: a later warm start that never improves
                # on best_validation_score_ keeps its own last weights, as there
                self._best_coefs, self._best_intercepts = self.coefs_, self.intercepts_

    def _validate_epoch(self, net, val, loss, scale):
        """(score, loss) on the validation data: accuracy or R² (NaN when a prediction is not finite),
        and the loss without penalty, reported as loss_curve_ reports it."""
        X_val, T_val, y_val, w_val = val
        trace = net.forward(X_val, checked=True)
        val_loss = float(net.trace_loss(trace, T_val, loss, w_val)) * scale
        A = trace.output
        A = to_numpy(A)
        if not np.isfinite(A).all():
            return np.nan, val_loss
        metric = accuracy_score if isinstance(self, ClassifierMixin) else r2_score
        return float(metric(y_val, self._decode(A), sample_weight=w_val)), val_loss

    def _update_no_improvement_count(self, early_stopping, score):
        if early_stopping:
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [_copy(c) for c in self.coefs_]
                self._best_intercepts = [_copy(i) for i in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _fit_lbfgs(self, X, T, sample_weight):
        """Full-batch L-BFGS-B through SciPy, as scikit-learn does (maxiter=max_iter, maxfun=max_fun,
        gtol=tol), on the objective and gradient of one stochastic step over the whole set."""
        import scipy.optimize

        net = self.network_
        if net.placement() is not None:  # SciPy's L-BFGS-B runs on the host, whatever the input
            net = self.network_ = net.to(xp=np)
        coefs, intercepts = net.weights.to_list(), net.biases.to_list()
        order = coefs + intercepts  # scikit-learn's packing: every W, then every b
        loss, scale = self._loss_function()
        step = _Stepper(net, loss, alpha=self.alpha, l1=self.l1, rates=None, rng=None, report_scale=scale,
                        weighted=sample_weight is not None, sparse=sp.issparse(X))
        sizes = np.cumsum([0] + [p.size for p in order])

        everything = slice(0, X.shape[0])

        def objective(theta):
            for p, a, b in zip(order, sizes[:-1], sizes[1:]):
                p[...] = theta[a:b].reshape(p.shape)
            J, grads = step.gradients(X, T, sample_weight, everything)
            by_id = {id(p): g for p, g in zip(step.params, grads)}
            return J, np.concatenate([np.ravel(by_id[id(p)]) for p in order]).astype(np.float64)

        theta0 = np.concatenate([p.ravel() for p in order])
        opts = {"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol}
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            res = scipy.optimize.minimize(objective, theta0, method="L-BFGS-B", jac=True, options=opts)
        for p, a, b in zip(order, sizes[:-1], sizes[1:]):
            p[...] = res.x[a:b].reshape(p.shape)
        if res.status != 0:
            warnings.warn(f"lbfgs failed to converge after {res.nit} iteration(s) (status={res.status}): "
                          f"{res.message}. Increase the number of iterations (max_iter) or scale the data.",
                          ConvergenceWarning)
        self.n_iter_ = min(int(res.nit), self.max_iter)
        self.loss_ = float(res.fun)
        if self.verbose:
            print(f"L-BFGS-B: {res.nit} iterations, {res.nfev} evaluations, loss = {res.fun:.8f}: {res.message}")

    def _forward(self, X):
        """a[L] for checked X (dense or sparse): the first layer's product takes X as it is."""
        net = self.network_
        if net.placement() is not None:  # fitted on a device: predict there, answer on the host
            return to_numpy(net.predict(_dense(X)))
        h = X
        for W, b, act in zip(net.weights, net.biases, net.activations):
            z = h @ W
            h = act(np.asarray(z) + b)
        return h

    def _validate_sample_weight(self, X, sample_weight, y=None):
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
        cw = getattr(self, "class_weight", None)
        if cw is not None and y is not None:
            cls_w = compute_sample_weight(cw, y).astype(X.dtype)
            sample_weight = cls_w if sample_weight is None else sample_weight * cls_w
        return sample_weight

    def _check_partial_fit_solver(self):
        if self.solver not in _STOCHASTIC:
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver} "
                                 f"is not stochastic.")
        return True

    def _check_X(self, X):
        return validate_data(self, X, reset=False, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32))

    def input_gradient(self, X, y=None):
        """Gashler's gradient with respect to the inputs, one row per sample: (n_samples, n_features).

        With ``y``: ∂ℓ_n/∂x_n, the gradient of sample n's own training loss ℓ_n (log loss for the
        classifier, ½‖ŷ − y‖² for 'squared_error'; no penalty) with respect to its input row.
        Without ``y``: the classifier gives ∂(−log p(ŷ_n | x_n))/∂x_n for its predicted class ŷ_n; the
        regressor gives ∂(Σ_k ŷ_nk)/∂x_n, which for one output is the gradient of the prediction.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        net = self.network_
        if net.placement() is not None:
            net = net.to(xp=np)
        X = net.check_inputs(X)
        trace = net.forward(X, checked=True)
        loss, _ = self._loss_function()
        if y is None:
            if isinstance(self, ClassifierMixin):
                T = self._targets_for(self.predict(X), trace.output.dtype)
            else:
                T = np.zeros_like(trace.output)
                loss = _losses.Loss("sum_of_outputs", lambda A, T: np.sum(A), lambda A, T: np.ones_like(A))
        else:
            T = self._targets_for(y, trace.output.dtype)
        g = net.backward(trace, T, loss)
        means = ("sklearn_log_loss", "sklearn_binary_log_loss", "mse", "poisson")  # J averaged over the rows
        scale = X.shape[0] if loss.name in means else 1
        return np.asarray(g.inputs) * scale

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
