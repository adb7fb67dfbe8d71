"""
==========================
From scikit-learn to ffnn
==========================

:mod:`ffnn.sklearn` has drop-in replacements for scikit-learn's
:class:`~sklearn.neural_network.MLPClassifier` and :class:`~sklearn.neural_network.MLPRegressor`:
the same parameters, defaults and fitted attributes, the same initial weights, and both pass
scikit-learn's own estimator checks. Change one import and the rest of your code — pipelines,
cross-validation, grid searches — runs unchanged.
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ffnn.sklearn import MLPClassifier

# %%
# One import changes
# ------------------
#
# The same pipeline, five-fold cross-validated on the wine data (178 samples, 13 features, three
# classes), with scikit-learn's estimator and with ffnn's. Both stop at ``max_iter`` epochs; the
# warning scikit-learn gives when it stops there is silenced.

X, y = load_wine(return_X_y=True)
params = dict(hidden_layer_sizes=(32,), max_iter=100, random_state=0)
for name, estimator in (("scikit-learn", SklearnMLPClassifier(**params)), ("ffnn", MLPClassifier(**params))):
    clf = make_pipeline(StandardScaler(), estimator)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(clf, X, y, cv=5)
    print(f"{name:>12}: accuracy {scores.mean():.3f} ± {scores.std():.3f} "
          f"in {time.perf_counter() - start:.2f} s")

# %%
# The same network, the same curve
# --------------------------------
#
# Both estimators draw the same initial weights for the same ``random_state`` and minimise the
# same objective (the cross-entropy plus ``alpha``'s L2 penalty) with the same Adam steps, so
# their ``loss_curve_`` should lie on top of each other.

X_scaled = StandardScaler().fit_transform(X)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    theirs = SklearnMLPClassifier(**params).fit(X_scaled, y)
    ours = MLPClassifier(**params).fit(X_scaled, y)
gap = np.max(np.abs(np.array(theirs.loss_curve_) - np.array(ours.loss_curve_)))
print(f"{len(ours.loss_curve_)} epochs; the two loss curves differ by at most {gap:.1e}")
assert gap < 1e-4

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.semilogy(theirs.loss_curve_, lw=4, alpha=0.5, label="scikit-learn MLPClassifier")
ax.semilogy(ours.loss_curve_, "k--", lw=1.2, label="ffnn.sklearn.MLPClassifier")
ax.set(xlabel="epoch", ylabel="loss_curve_ (log scale)", title="wine, 13-32-3, Adam")
ax.legend()
ax.grid(True, alpha=0.3)
fig.tight_layout()

# %%
# What ffnn adds
# --------------
#
# Beyond scikit-learn's parameters: ``activation`` as a list, one per hidden layer, and any ffnn
# activation (``"gelu"``, ``"elu"``, ``"leaky_relu(slope=0.2)"``, …); ``l1``; ``dropout``; the
# solvers ``"adamw"`` (with ``weight_decay``) and ``"rmsprop"``; ``class_weight``;
# ``dtype="float32"``. They are ordinary hyperparameters, so a grid search explores them like any
# other. Here on the digits (1,797 images of 8 × 8 pixels), three-fold, 30 epochs each:

X, y = load_digits(return_X_y=True)
X = X / 16.0
grid = GridSearchCV(
    MLPClassifier(hidden_layer_sizes=(32, 32), max_iter=30, random_state=0),
    {"activation": ["relu", ["tanh", "gelu"]], "solver": ["adam", "adamw"]},
    cv=3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    grid.fit(X, y)
for params_, mean in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"]):
    print(f"activation={params_['activation']!s:<17} solver={params_['solver']:<6} accuracy {mean:.4f}")
print("best:", grid.best_params_)

# %%
# The network inside, and gradients with respect to the inputs
# -------------------------------------------------------------
#
# A fitted estimator's ``network_`` is an :class:`ffnn.Network`: ``coefs_`` and ``intercepts_``
# are its ``weights[l]`` and ``biases[l]``. ``input_gradient(X)`` back-propagates one step
# further than the weights, to ∂J/∂X (Gashler's gradient with respect to the inputs), one row per
# sample: without ``y`` it is the gradient of −log p(predicted class). Pixels where it is
# negative raise the predicted class's probability when they get brighter.

clf = grid.best_estimator_
print(clf.network_)
assert np.array_equal(clf.coefs_[0], np.asarray(clf.network_.weights[1]))
G = clf.input_gradient(X[:6])
fig, axes = plt.subplots(2, 6, figsize=(10, 3.8))
for n in range(6):
    axes[0, n].imshow(X[n].reshape(8, 8), cmap="gray_r")
    axes[0, n].set_title(f"predicted {clf.predict(X[n:n + 1])[0]}")
    m = np.max(np.abs(G[n]))
    axes[1, n].imshow(-G[n].reshape(8, 8), cmap="RdBu_r", vmin=-m, vmax=m)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("digit")
axes[1, 0].set_ylabel("−∂J/∂x")
fig.suptitle("Red pixels: brighter would make the predicted class more likely")
fig.tight_layout()
