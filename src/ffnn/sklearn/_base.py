"""What ffnn's two scikit-learn estimators share: declarative parameter constraints, scikit-learn's
stopping rule and learning-rate schedule, initialisation, and the fit loops (stochastic and L-BFGS).
See :mod:`ffnn.sklearn` for the public estimators.
"""

from __future__ import annotations

import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import activations as _act
from .. import losses as _losses
from ..metrics import accuracy, r2
from ..network import Network
from ..optim import SGD, Adam, AdamW, RMSprop
from ..training import train
from . import _device

_SK_ACTIVATIONS = {"logistic": "sigmoid"}  # scikit-learn's names for ffnn's


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


_constraints = {
    "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
    "activation": [_ActivationConstraint()],
    "solver": [StrOptions({"lbfgs", "sgd", "adam", "adamw", "rmsprop"})],
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
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
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
    "dtype": [StrOptions({"float32", "float64"})],
}


class _InvScaling:
    """scikit-learn's 'invscaling': η = η₀ / (t + 1)^p with t the samples seen before this epoch."""

    def __init__(self, power_t, n_samples, steps_per_epoch, t0):
        self.power_t, self.n, self.spe, self.t0 = power_t, n_samples, steps_per_epoch, t0

    def __call__(self, step):
        epoch = step // self.spe
        return 1.0 / (self.t0 + epoch * self.n + 1) ** self.power_t


class _SklearnStopping:
    """scikit-learn's stopping rule as an ffnn callback (its ``_update_no_improvement_count``)."""

    def __init__(self, est, optimizer):
        self.est, self.opt = est, optimizer

    def __call__(self, net, history):
        est = self.est
        est.loss_curve_.append(history.loss[-1])
        est.loss_ = history.loss[-1]
        if est.early_stopping:
            score = history.val_metric[-1]
            est.validation_scores_.append(score)
            est._no_improvement_count = (est._no_improvement_count + 1
                                         if score < est.best_validation_score_ + est.tol else 0)
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_params = [net.xp.asarray(p, copy=True) for p in net.parameters()]
        else:
            est._no_improvement_count = (est._no_improvement_count + 1
                                         if est.loss_curve_[-1] > est.best_loss_ - est.tol else 0)
            est.best_loss_ = min(est.best_loss_, est.loss_curve_[-1])
        if est._no_improvement_count > est.n_iter_no_change:
            if est.solver == "sgd" and est.learning_rate == "adaptive":
                if self.opt.lr > 1e-6:
                    self.opt.lr /= 5.0
                    est._no_improvement_count = 0
                    if est.verbose:
                        print(f"Setting learning rate to {self.opt.lr:f}")
                    return False
            if est.verbose:
                print(f"Training loss did not improve more than tol={est.tol} for {est.n_iter_no_change} "
                      f"consecutive epochs. Stopping.")
            est._stopped = True
            return True
        return False


class _BaseMLP(BaseEstimator):
    _parameter_constraints = _constraints
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
                 dropout=0.0, weight_decay=0.01, dtype="float64"):
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

    # --- scikit-learn's fitted attributes, read from the ffnn network -------------------------------

    @property
    def coefs_(self):
        """W[1..L] as a 0-based list (scikit-learn's layout: (n_in, n_out), the same as ffnn's)."""
        return self.network_.weights.to_list()

    @property
    def intercepts_(self):
        return self.network_.biases.to_list()

    @property
    def n_layers_(self):
        return len(self.network_.sizes)

    @property
    def out_activation_(self):
        name = self.network_.activations[-1].name
        return {"sigmoid": "logistic"}.get(name, name)

    # --- shared machinery ---------------------------------------------------------------------------

    def _hidden(self):
        h = self.hidden_layer_sizes
        h = [h] if isinstance(h, Integral) else list(h)
        if any(not isinstance(w, Integral) or w < 1 for w in h):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes}.")
        return h

    def _hidden_activations(self, n_hidden):
        acts = self.activation if isinstance(self.activation, (list, tuple)) else [self.activation] * n_hidden
        if len(acts) != n_hidden:
            raise ValueError(f"activation has {len(acts)} entries for {n_hidden} hidden layers")
        return [a if isinstance(a, _act.Activation) else _SK_ACTIVATIONS.get(a, a) for a in acts]

    def _make_optimizer(self):
        lr = self.learning_rate_init
        if self.solver == "sgd":
            return SGD(lr, momentum=self.momentum, nesterov=self.nesterovs_momentum and self.momentum > 0)
        if self.solver == "adam":
            return Adam(lr, self.beta_1, self.beta_2, self.epsilon)
        if self.solver == "adamw":
            return AdamW(lr, self.beta_1, self.beta_2, self.epsilon, self.weight_decay)
        return RMSprop(lr, eps=self.epsilon)

    def _init_network(self, n_features, n_outputs, output):
        """A fresh network initialised as scikit-learn initialises its MLP (Glorot uniform with bound
        √(6/(fan_in + fan_out)), √(2/…) for logistic hidden units, biases drawn the same way, coef then
        intercept per layer from ``check_random_state(random_state)``): the same starting weights."""
        hidden = self._hidden()
        acts = self._hidden_activations(len(hidden))
        net = Network([n_features, *hidden, n_outputs], acts, output, seed=0, dtype=self.dtype)
        rs = check_random_state(self.random_state)
        factor = 2.0 if self.activation in ("logistic", "sigmoid") else 6.0
        for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
            bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
            net.weights[l] = rs.uniform(-bound, bound, W.shape).astype(W.dtype)
            net.biases[l] = rs.uniform(-bound, bound, b.shape).astype(b.dtype)
        self._shuffle_seed = int(rs.randint(np.iinfo(np.int32).max))
        self.network_ = net
        self._optimizer = None
        self.t_ = 0
        self.n_iter_ = 0
        self.loss_curve_ = []
        self.best_loss_ = np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self._no_improvement_count = 0

    def _fit_network(self, X, T, sample_weight, *, incremental):
        n = X.shape[0]
        if self.solver == "lbfgs":
            return self._fit_lbfgs(X, T, sample_weight)
        if self._train_device is not None:  # train where the caller's tensors live (ffnn.sklearn._device)
            self.network_ = self.network_.to(device=self._train_device)
        batch = min(200, n) if self.batch_size == "auto" else self.batch_size
        if batch > n and self.batch_size != "auto":
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch = n
        if self._optimizer is None:
            self._optimizer = self._make_optimizer()
        opt = self._optimizer
        schedule = None
        steps_per_epoch = -(-n // batch)
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            schedule = _InvScaling(self.power_t, n, steps_per_epoch, self.t_)
        early = self.early_stopping and not incremental
        if early and (self.validation_fraction * n < 1 or (1 - self.validation_fraction) * n < 1):
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves an empty split of {n} samples")
        stopper = _SklearnStopping(self, opt)
        self._stopped = False
        self._best_params = None
        metric = partial(accuracy, multilabel=True) if getattr(self, "_multilabel", False) else None
        if not isinstance(self, ClassifierMixin):
            metric = r2
        epochs = 1 if incremental else self.max_iter
        # scikit-learn's penalty is alpha/(2 Σ_batch w) Σ W²: Σ_batch w is the batch size without weights,
        # and batch · mean(w) with them (exact for a full batch, the case its weight checks test).
        weight_sum = batch * (1.0 if sample_weight is None else float(np.mean(sample_weight)))
        hist = train(self.network_, X, T, loss=self._loss, optimizer=opt, epochs=epochs, batch_size=batch,
                     l1=self.l1, l2=self.alpha / weight_sum if weight_sum > 0 else 0.0, schedule=schedule,
                     validation=self.validation_fraction if early else None, shuffle=self.shuffle,
                     seed=self._shuffle_seed + self.n_iter_, callbacks=() if incremental else [stopper],
                     dropout=self.dropout, metric=metric, sample_weight=sample_weight,
                     progress=bool(self.verbose) and self.verbose > 1)
        if incremental:
            self.loss_curve_.append(hist.loss[-1])
            self.loss_ = hist.loss[-1]
            self.best_loss_ = min(self.best_loss_, self.loss_)
        n_fit = n - (int(round(self.validation_fraction * n)) if early else 0)
        self.n_iter_ += len(hist)
        self.t_ += len(hist) * n_fit
        if self.verbose:
            for i, loss in enumerate(hist.loss, start=self.n_iter_ - len(hist) + 1):
                print(f"Iteration {i}, loss = {loss:.8f}")
        if early:
            self.best_loss_ = None
            if self._best_params is not None:
                for p, best in zip(self.network_.parameters(), self._best_params):
                    p[...] = best
        if not incremental and not self._stopped and len(hist) == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                          f"optimization hasn't converged yet.", ConvergenceWarning)

    def _fit_lbfgs(self, X, T, sample_weight):
        """Full-batch L-BFGS-B through SciPy, as scikit-learn does (maxiter=max_iter, maxfun=max_fun, gtol=tol)."""
        import scipy.optimize

        net, n = self.network_, X.shape[0]
        params = net.parameters()
        shapes = [p.shape for p in params]
        sizes = [p.size for p in params]
        Xn = net.check_inputs(X)
        Tn = net.check_targets(T, n)
        w = None if sample_weight is None else net.check_sample_weight(sample_weight, n)
        loss = _losses.get_loss(self._loss)
        l2 = self.alpha / float(n if w is None else np.sum(w))  # scikit-learn scales the penalty by Σ w
        penalty = _losses.Penalty(self.l1, l2)

        def unpack(theta):
            offset = 0
            for p, shape, size in zip(params, shapes, sizes):
                p[...] = theta[offset:offset + size].reshape(shape)
                offset += size

        def objective(theta):
            unpack(theta)
            trace = net.forward(Xn, checked=True)
            J = float(net.trace_loss(trace, Tn, loss, w))
            g = net.backward(trace, Tn, loss, sample_weight=w, input_gradient=False, checked=True)
            J += penalty.value(net.weights)
            gWs = penalty.gradients(net.weights, list(g.weights))
            flat = [a.ravel() for pair in zip(gWs, g.biases) for a in pair]
            return J, np.concatenate(flat).astype(np.float64)

        theta0 = np.concatenate([p.ravel() for p in params]).astype(np.float64)
        res = scipy.optimize.minimize(objective, theta0, method="L-BFGS-B", jac=True,
                                      options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        unpack(res.x)
        self.n_iter_ = int(res.nit)
        if self.verbose:
            print(f"L-BFGS-B: {res.nit} iterations, {res.nfev} evaluations, loss = {res.fun:.8f}: {res.message}")
        self.loss_ = float(res.fun)
        self.t_ += n * self.n_iter_
        if res.status == 1:
            warnings.warn(f"lbfgs failed to converge (status=1): {res.message}. Increase the number of "
                          f"iterations (max_iter) or scale the data.", ConvergenceWarning)

    def _validate_sample_weight(self, X, sample_weight, y=None):
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        cw = getattr(self, "class_weight", None)
        if cw is not None and y is not None:
            cls_w = compute_sample_weight(cw, y)
            sample_weight = cls_w if sample_weight is None else sample_weight * cls_w
        return sample_weight

    def _check_partial_fit_solver(self):
        if self.solver == "lbfgs":
            raise AttributeError(f"partial_fit is only available for stochastic optimizers. {self.solver!r} "
                                 f"is not stochastic.")
        return True

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
        trace = net.forward(X)
        if y is None:
            if isinstance(self, ClassifierMixin):
                T = self._targets_for(self.predict(X))
                loss = _losses.get_loss(self._loss)
            else:
                T = np.zeros_like(trace.output)
                loss = _losses.Loss("sum_of_outputs", lambda A, T: np.sum(A), lambda A, T: np.ones_like(A))
        else:
            T = self._targets_for(y)
            loss = _losses.get_loss(self._loss)
        g = net.backward(trace, T, loss)
        scale = X.shape[0] if loss.name in ("cross_entropy", "binary_cross_entropy", "mse") else 1
        return np.asarray(g.inputs) * scale

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
