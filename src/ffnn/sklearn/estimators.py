"""Drop-in scikit-learn estimators: ``from ffnn.sklearn import MLPClassifier, MLPRegressor``.

Hyperparameters, defaults and fitted attributes follow scikit-learn's own MLPClassifier and
MLPRegressor wherever they mean the same thing, so code written for scikit-learn runs unchanged;
ffnn adds per-layer activations, l1, dropout, more losses, more optimisers, class_weight and dtype.
Importing this module imports scikit-learn; ``import ffnn`` alone never does.

Mapping to ffnn's training (the same objective as scikit-learn's)::

    loss_ = J + (alpha / 2B) Σ_l Σ W[l]² (+ l1 Σ|W|)      B = batch size ('lbfgs': the whole set)
    classifier: J = cross-entropy (softmax) or binary cross-entropy (one logistic unit, or one per
                label for multilabel targets), averaged over the batch
    regressor:  J = 1/(2N) Σ_n ‖ŷ_n − y_n‖²  ('squared_error'; also 'half_sse', 'sse', 'mse')
    solver 'sgd': ffnn.SGD(learning_rate_init, momentum, nesterov=nesterovs_momentum) — the same
    Nesterov form as scikit-learn; 'adam': ffnn.Adam; 'adamw', 'rmsprop': ffnn's additions;
    'lbfgs': SciPy's L-BFGS-B on the full-batch objective, as scikit-learn does.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin, _fit_context
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._array import to_numpy
from ._base import _BaseMLP, _constraints

__all__ = ["MLPClassifier", "MLPRegressor"]

class MLPClassifier(ClassifierMixin, _BaseMLP):
    """scikit-learn's MLPClassifier, computed by ffnn (same parameters; see the module docstring).

    ffnn's additions: ``activation`` may be a list (one per hidden layer) and any ffnn activation;
    ``l1``; ``dropout``; ``solver`` 'adamw' (with ``weight_decay``) and 'rmsprop'; ``class_weight``
    ('balanced' or a dict); ``dtype``; ``network_`` (the ffnn.Network) and :meth:`input_gradient`.
    """

    _parameter_constraints = {**_constraints, "class_weight": [StrOptions({"balanced"}), dict, None]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, l1=0.0,
                 dropout=0.0, weight_decay=0.01, class_weight=None, dtype="float64"):
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
                         max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
                         warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
                         early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         l1=l1, dropout=dropout, weight_decay=weight_decay, dtype=dtype)
        self.class_weight = class_weight

    def _targets_for(self, y):
        return self._label_binarizer.transform(y).astype(np.float64)

    def _start(self, X, T):
        """A fresh network: one logistic unit per label (binary, multilabel) or a softmax layer."""
        self.n_outputs_ = T.shape[1]
        self._loss = "binary_cross_entropy" if self.n_outputs_ == 1 or self._multilabel else "cross_entropy"
        self._init_network(X.shape[1], self.n_outputs_, "sigmoid" if self._loss == "binary_cross_entropy" else "softmax")

    def _setup_labels(self, y, classes=None):
        self._label_binarizer = LabelBinarizer()
        self._label_binarizer.fit(classes if classes is not None else y)
        self.classes_ = self._label_binarizer.classes_
        self._multilabel = self._label_binarizer.y_type_.startswith("multilabel")
        if len(self.classes_) < 2 and not self._multilabel:
            raise ValueError(f"The number of classes has to be greater than one; got {len(self.classes_)} class")

    def _validate_input(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, multi_output=True, dtype=(np.float64, np.float32),
                             y_numeric=False)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit to data X (n_samples, n_features) and labels y (n_samples,) or an indicator matrix."""
        X, y = self._validate_input(X, y, reset=True)
        type_of_target(y, input_name="y", raise_unknown=True)
        sample_weight = self._validate_sample_weight(X, sample_weight, y)
        warm = self.warm_start and hasattr(self, "network_") and hasattr(self, "classes_")
        if warm:
            if set(unique_labels(y)) - set(self.classes_):
                raise ValueError(f"warm_start can only be used where `y` has the same classes as in the previous "
                                 f"call to fit. Previously got {self.classes_}, `y` has {unique_labels(y)}")
        else:
            self._setup_labels(y)
        T = self._targets_for(y)
        if not warm or self.network_.sizes[0] != X.shape[1]:
            self._start(X, T)
        self._fit_network(X, T, sample_weight, incremental=False)
        return self

    @available_if(_BaseMLP._check_partial_fit_solver)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), keeping the optimiser's state; ``classes`` is needed on the first call."""
        first = not hasattr(self, "network_")
        if first:
            self._validate_params()
        X, y = self._validate_input(X, y, reset=first)
        if first:
            if classes is None and not type_of_target(y).startswith("multilabel"):
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._setup_labels(y, classes)
            T = self._targets_for(y)
            self._start(X, T)
        else:
            if classes is not None and not np.array_equal(np.sort(unique_labels(classes)), np.sort(self.classes_)):
                raise ValueError(f"`classes={list(classes)}` is not the same as on last call to partial_fit, "
                                 f"was: {list(self.classes_)}")
            if set(unique_labels(y)) - set(self.classes_):
                raise ValueError(f"Expected only labels in classes_ = {self.classes_}, got {unique_labels(y)}")
            T = self._targets_for(y)
        self._fit_network(X, T, self._validate_sample_weight(X, sample_weight, y), incremental=True)
        return self

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes); binary: [1 − p, p]; multilabel: p per label."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        A = to_numpy(self.network_.predict(X))
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
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        A = to_numpy(self.network_.predict(X))
        if self._multilabel:
            return self._label_binarizer.inverse_transform(A, threshold=0.5)
        if self.n_outputs_ == 1:
            return self.classes_[(A[:, 0] > 0.5).astype(int)]
        return self.classes_[np.argmax(A, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """scikit-learn's MLPRegressor, computed by ffnn (same parameters; see the module docstring).

    ``loss``: 'squared_error' (scikit-learn's: ½ mean squared error, ffnn's 'mse' = 1/(2N) Σ‖ŷ − y‖²),
    or ffnn's 'half_sse' and 'sse'. The output layer is the identity.
    """

    _parameter_constraints = {**_constraints, "loss": [StrOptions({"squared_error", "mse", "half_sse", "sse"})]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, l1=0.0,
                 dropout=0.0, weight_decay=0.01, dtype="float64"):
        super().__init__(hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
                         learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
                         max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
                         warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
                         early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
                         beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
                         l1=l1, dropout=dropout, weight_decay=weight_decay, dtype=dtype)
        self.loss = loss

    @property
    def _loss(self):
        return "mse" if self.loss == "squared_error" else self.loss

    def _targets_for(self, y):
        y = np.asarray(y, dtype=np.float64)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _validate_input(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit to data X (n_samples, n_features) and targets y (n_samples,) or (n_samples, n_targets)."""
        X, y = self._validate_input(X, y, reset=True)
        sample_weight = self._validate_sample_weight(X, sample_weight)
        T = self._targets_for(y)
        self._y_ndim = y.ndim
        warm = self.warm_start and hasattr(self, "network_") and self.network_.sizes[0] == X.shape[1] \
            and self.network_.sizes[-1] == T.shape[1]
        if not warm:
            self.n_outputs_ = T.shape[1]
            self._init_network(X.shape[1], self.n_outputs_, "identity")
        self._fit_network(X, T, sample_weight, incremental=False)
        return self

    @available_if(_BaseMLP._check_partial_fit_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), keeping the optimiser's state."""
        first = not hasattr(self, "network_")
        if first:
            self._validate_params()
        X, y = self._validate_input(X, y, reset=first)
        T = self._targets_for(y)
        if first:
            self._y_ndim = y.ndim
            self.n_outputs_ = T.shape[1]
            self._init_network(X.shape[1], self.n_outputs_, "identity")
        self._fit_network(X, T, self._validate_sample_weight(X, sample_weight), incremental=True)
        return self

    def predict(self, X):
        """Predictions (n_samples,) for one target, (n_samples, n_targets) for several."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        A = to_numpy(self.network_.predict(X))
        return A[:, 0] if self._y_ndim == 1 else A
