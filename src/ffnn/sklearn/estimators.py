"""Drop-in scikit-learn estimators: ``from ffnn.sklearn import MLPClassifier, MLPRegressor``.

Hyperparameters, defaults and fitted attributes follow scikit-learn's own MLPClassifier and
MLPRegressor wherever they mean the same thing, so code written for scikit-learn runs unchanged;
ffnn adds per-layer activations, l1, dropout, more losses, more optimisers, class_weight and dtype.
Importing this module imports scikit-learn; ``import ffnn`` alone never does.

With scikit-learn's parameters, training takes scikit-learn's steps (in float64 without
shuffling, the same ``coefs_``, ``intercepts_``, ``loss_curve_`` and ``n_iter_`` to rounding).
One step on a batch B with sample weights w (all 1 without weights), s_B = Σ_B w_n::

    loss  = J_B + (alpha / 2 s_B) Σ_l Σ W[l]²
    grad  = ∂J_B/∂θ + (alpha / s_B) W        (weights only; biases carry no penalty)
    classifier: J = cross-entropy (softmax) or binary cross-entropy (one logistic unit, or one per
                label for multilabel targets), weighted mean over the batch, computed as scikit-learn's
                log_loss computes it: from the probabilities clipped to [eps, 1 − eps] (eps of the
                dtype), so J is capped where a probability saturates, and loss_curve_, loss_,
                best_loss_, the tol/n_iter_no_change rule and L-BFGS-B's line search see what
                scikit-learn sees; the gradient stays the unclipped error (ŷ − y)/s_B that scikit-learn
                differentiates. ffnn.train keeps the exact fused loss, J = −1/N Σ y (z − logsumexp z)
    regressor:  'squared_error': J = Σ_n w_n ‖ŷ_n − y_n‖² / (2 s_B); loss_curve_ reports J / K for K
                outputs (scikit-learn's mean over the outputs), the gradient is that of J
                'poisson': J = Σ_n w_n Σ_k [y log(y/ŷ) − y + ŷ] / s_B with ŷ = exp(z[L])
    loss_ = Σ_B |B| loss_B / N over the epoch;  'lbfgs': one batch, the whole set

    solver 'sgd': v ← μ v − η g; θ ← θ + v (Nesterov: θ ← θ + μ v − η g), ffnn.SGD
    solver 'adam': ffnn.Adam(step_size_correction=True), scikit-learn's placement of ε:
                   η_t = η √(1 − β₂ᵗ)/(1 − β₁ᵗ);  θ ← θ − η_t m / (√s + ε)
    'invscaling': η = η₀/(t + 1)^power_t with t the samples seen, changed after each epoch;
    'adaptive': η / 5 whenever the stopping rule fires, until η ≤ 1e-6.

Every ``fit`` starts a new optimiser (also with ``warm_start=True``, whose weights carry over);
``partial_fit`` keeps it between calls. ``n_iter_`` counts the epochs of the last call.

Where ffnn's additions change this (all off by default)::

    l1 = λ₁ > 0           loss += λ₁ Σ_l Σ|W[l]|, grad += λ₁ sign(W) (not scaled by s_B)
    dropout = p > 0       inverted dropout on the hidden layers while training (never in predict)
    activation = [...]    one activation per hidden layer; any ffnn activation
    solver 'adamw'        ffnn.AdamW with weight_decay λ: θ ← θ − η_t m/(√s + ε) − η λ W
    solver 'rmsprop'      ffnn.RMSprop: s ← 0.9 s + 0.1 g²; θ ← θ − η g/(√s + ε)
    solver 'rprop'        ffnn.Rprop (iRPROP−, Igel & Hüsken) with Δ₀ = learning_rate_init: full-batch
                          epochs, one step each; batch_size must stay 'auto'; no partial_fit
    solver 'quickprop'    ffnn.Quickprop (Fahlman) with ε = learning_rate_init, full-batch as 'rprop'
    loss 'huber', 'log_cosh' (regressor)   ffnn.losses.huber (δ = 1) and log_cosh (identity output)
    class_weight          multiplies each sample's weight by its class's weight (so s_B changes too)
    loss 'mse', 'half_sse', 'sse' (regressor)   ffnn's definitions, reported without the 1/K
    dtype                 'float32' or 'float64' forces the dtype; None follows X (scikit-learn's)

Keyword-only additions, off by default (scikit-learn's behaviour is unchanged without them)::

    fit(X, y, sample_weight=None, *, X_val=None, y_val=None)
        early stopping on your own validation data instead of ``validation_fraction``;
        ``validation_scores_`` and ``validation_loss_curve_`` (the loss without penalty, scaled as
        ``loss_curve_``) record every epoch whenever there is validation data.
    partial_fit(..., *, epochs=1)
        several passes in one call (``n_iter_`` = epochs).
    warm_start="keep_optimizer"
        a later ``fit`` continues the optimiser (momentum, Adam moments, step count), the learning
        rate schedule, the shuffling and dropout streams and, with early stopping, the last (not the
        best) weights and the same validation split: fit(k epochs) + fit(m) takes exactly the steps
        of fit(k + m). ``warm_start=True`` keeps scikit-learn's meaning (weights only).
    callbacks=[cb, ...]
        ffnn's callbacks, ``cb(network, history) -> True to stop``, after every epoch; ``history`` is
        this call's :class:`ffnn.History` (loss, val_loss, val_metric, lr, time per epoch).
    est.set_callbacks(...)
        where the installed scikit-learn has its callback API (``sklearn.callback``): its
        progress and monitoring callbacks, with one task per epoch (a fitted copy at each
        epoch's end); a callback asking to stop ends training after that epoch.
    verbose=True (or a positive integer)
        scikit-learn's lines: "Iteration N, loss = …" per epoch (and the validation score with
        early stopping); ``verbose="progress"`` draws a tqdm progress bar over epochs instead
        (the lines where tqdm is not installed).
    est.save(path), ffnn.sklearn.load(path)
        the fitted estimator in one safetensors file, without pickle.

Validation data in a Pipeline: with metadata routing enabled, request X_val and y_val from the
estimator and name X_val in the pipeline's ``transform_input`` so that the transformers fitted on X
transform it before it reaches the estimator::

    sklearn.set_config(enable_metadata_routing=True)
    mlp = MLPClassifier(early_stopping=True).set_fit_request(X_val=True, y_val=True)
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", mlp)], transform_input=["X_val"])
    pipe.fit(X, y, X_val=X_val, y_val=y_val)
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _persist
from ._base import BaseMLP, CONSTRAINTS

__all__ = ["MLPClassifier", "MLPRegressor", "load"]


class _Saved:
    """What both estimators add for their files (``ffnn.sklearn._persist``)."""

    def save(self, path):
        """Write this fitted estimator to ``path`` as one safetensors file (no pickle): weights,
        optimiser state, classes, parameters (not ``callbacks``) and the loss and validation curves.
        ``ffnn.sklearn.load(path)`` gives it back, predicting identically and able to go on training
        from the same state (a later ``partial_fit``, or ``fit`` with ``warm_start``).

        Parameters
        ----------
        path : str or path-like
        """
        _persist.save(self, path)


class MLPClassifier(ClassifierMixin, _Saved, BaseMLP):
    """scikit-learn's MLPClassifier, computed by ffnn (same parameters and steps; see the module
    docstring for the objective and for where ffnn's additions change it).

    ffnn's additions: ``activation`` may be a list (one per hidden layer) and any ffnn activation;
    ``l1``; ``dropout``; ``solver`` 'adamw' (with ``weight_decay``), 'rmsprop', 'rprop' and 'quickprop';
    ``class_weight`` ('balanced' or a dict); ``dtype``; ``network_`` (the ffnn.Network holding ``coefs_`` and
    ``intercepts_``) and :meth:`input_gradient`. Sparse (CSR/CSC) X is accepted: each batch is
    densified in turn, so only the first layer's product sees the sparse matrix.
    """

    _parameter_constraints = {**CONSTRAINTS, "class_weight": [StrOptions({"balanced"}), dict, None]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, l1=0.0,
                 dropout=0.0, weight_decay=0.01, class_weight=None, dtype=None, callbacks=None):
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
                         max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
                         warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
                         early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         l1=l1, dropout=dropout, weight_decay=weight_decay, dtype=dtype,
                         callbacks=callbacks)
        self.class_weight = class_weight

    def _loss_name(self):
        return "cross_entropy" if self.out_activation_ == "softmax" else "binary_cross_entropy"

    def _out_activation_name(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _targets_for(self, y, dtype=np.float64):
        return self._label_binarizer.transform(y).astype(dtype)

    def _labels_for(self, T):
        return self._label_binarizer.inverse_transform(T)

    def _decode(self, A):
        return self._label_binarizer.inverse_transform(A.ravel() if self.n_outputs_ == 1 else A)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, reset=reset, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=self._input_dtype())
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        # A fresh fit defines the classes; a warm start needs the same classes, partial_fit a subset.
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            self._multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"warm_start can only be used where `y` has the same classes as in the "
                                     f"previous call to fit. Previously got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                                 f"'y' has {classes}.")
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None):
        """Fit the model to data X and labels y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a label indicator matrix for multilabel targets.
        sample_weight : array-like of shape (n_samples,), default=None
        X_val, y_val : validation data, default=None
            ffnn's addition, given together, for the stochastic solvers ('lbfgs' has no epochs and
            ignores them). Early stopping (``early_stopping=True``) scores these
            instead of holding out ``validation_fraction`` of X; with or without early stopping,
            ``validation_scores_`` (accuracy) and ``validation_loss_curve_`` record every epoch.
            In a Pipeline, see the module docstring for routing them through the transformers.

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, X_val=X_val, y_val=y_val)

    @available_if(BaseMLP._check_partial_fit_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None, *, epochs=1):
        """``epochs`` passes over (X, y), keeping the optimiser's state between calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_classes,), default=None
            Every class of all calls; required on the first call, may be omitted later.
        sample_weight : array-like of shape (n_samples,), default=None
        epochs : int, default=1
            ffnn's addition: the number of passes (scikit-learn's partial_fit makes one).

        Returns
        -------
        self : MLPClassifier
        """
        if getattr(self, "classes_", None) is None:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self.classes_ = unique_labels(classes)
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
            self._multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to partial_fit, was: "
                             f"{self.classes_!r}")
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, epochs=epochs)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes); binary: [1 − p, p]; multilabel: p per label."""
        check_is_fitted(self)
        A = self._forward(self._check_X(X))
        if self.n_outputs_ == 1 and not self._multilabel:
            return np.hstack([1 - A, A])
        if self._multilabel:  # per-label probabilities stay strictly inside (0, 1), as scikit-learn expects
            eps = np.finfo(A.dtype).eps
            return np.clip(A, eps, 1 - eps)
        return A

    def predict_log_proba(self, X):
        """log(predict_proba(X)), −inf where a probability is exactly 0 (as scikit-learn's MLP)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Labels (n_samples,), or an indicator matrix for multilabel targets."""
        check_is_fitted(self)
        return self._decode(self._forward(self._check_X(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _Saved, BaseMLP):
    """scikit-learn's MLPRegressor, computed by ffnn (same parameters and steps; see the module
    docstring for the objective and for where ffnn's additions change it).

    ``loss``: 'squared_error' (scikit-learn's: ½ squared error, averaged over samples and outputs
    in ``loss_curve_``; identity output) or 'poisson' (half Poisson deviance, exp output), and ffnn's
    'mse' = 1/(2N) Σ‖ŷ − y‖², 'half_sse', 'sse', 'huber' (δ = 1) and 'log_cosh' (identity output;
    see :mod:`ffnn.losses`).
    """

    _parameter_constraints = {**CONSTRAINTS, "loss": [StrOptions({"squared_error", "poisson", "mse", "half_sse", "sse",
                                                                  "huber", "log_cosh"})]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, l1=0.0,
                 dropout=0.0, weight_decay=0.01, dtype=None, callbacks=None):
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
                         max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
                         warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
                         early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         l1=l1, dropout=dropout, weight_decay=weight_decay, dtype=dtype,
                         callbacks=callbacks)
        self.loss = loss

    def _loss_name(self):
        return {"squared_error": "mse", "poisson": "poisson"}.get(self.loss, self.loss)

    def _out_activation_name(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _targets_for(self, y, dtype=np.float64):
        y = np.asarray(y, dtype=dtype)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _labels_for(self, T):
        return T[:, 0] if T.shape[1] == 1 else T

    def _decode(self, A):
        return A.ravel() if A.shape[1] == 1 else A

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, reset=reset, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=self._input_dtype())
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None):
        """Fit the model to data X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
        X_val, y_val : validation data, default=None
            ffnn's addition, given together, for the stochastic solvers ('lbfgs' has no epochs and
            ignores them). Early stopping (``early_stopping=True``) scores these
            instead of holding out ``validation_fraction`` of X; with or without early stopping,
            ``validation_scores_`` (R²) and ``validation_loss_curve_`` record every epoch.
            In a Pipeline, see the module docstring for routing them through the transformers.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False, X_val=X_val, y_val=y_val)

    @available_if(BaseMLP._check_partial_fit_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, *, epochs=1):
        """``epochs`` passes over (X, y), keeping the optimiser's state between calls.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
        epochs : int, default=1
            ffnn's addition: the number of passes (scikit-learn's partial_fit makes one).

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True, epochs=epochs)

    def predict(self, X):
        """Predictions (n_samples,) for one target, (n_samples, n_targets) for several."""
        check_is_fitted(self)
        return self._decode(self._forward(self._check_X(X)))


def load(path):
    """An estimator saved by ``est.save(path)``: it predicts as the saved one did and goes on training
    (``partial_fit``, or ``fit`` with ``warm_start``) from the state it was saved in.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ffnn.sklearn.MLPClassifier or MLPRegressor

    Raises
    ------
    FileFormatError
        Naming the file, when it is missing, truncated, corrupted, not a safetensors file or not an
        estimator file, or has a missing, mistyped or unknown field or array (naming the field).
    """
    return _persist.load(path, {cls.__name__: cls for cls in (MLPClassifier, MLPRegressor)})
