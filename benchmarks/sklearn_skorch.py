"""ffnn.sklearn against scikit-learn's MLP and skorch (when installed): 5-fold cross-validated scores
and total fit time for the same network trained the same way, on scikit-learn's bundled data sets
(standardised inputs), with 2 threads.

    python benchmarks/sklearn_skorch.py

One hidden layer of 64 relu units, Adam (learning rate 1e-3), batches of 200, exactly 100 epochs
(no early stopping or tolerance stop), L2 alpha = 1e-4 (skorch: weight decay alpha / batch size, the
same gradient term). Accuracy for iris, wine, breast_cancer and digits; R² for diabetes (target
standardised). Not a test: it prints a table.
"""

import warnings

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier as SkC
from sklearn.neural_network import MLPRegressor as SkR
from sklearn_parity import CLASSIFICATION_SETS, cv  # beside this file
from threadpoolctl import threadpool_limits

from ffnn.sklearn import MLPClassifier as FfC
from ffnn.sklearn import MLPRegressor as FfR

HIDDEN, EPOCHS, BATCH, LR, ALPHA = 64, 100, 200, 1e-3, 1e-4
PARAMS = dict(hidden_layer_sizes=(HIDDEN,), solver="adam", learning_rate_init=LR, batch_size=BATCH, alpha=ALPHA,
              max_iter=EPOCHS, tol=0.0, n_iter_no_change=np.inf, random_state=0)


def _skorch(classifier, n_features, n_outputs):
    """A skorch estimator with the same network and training, or None without skorch."""
    try:
        import torch
        from skorch import NeuralNetClassifier, NeuralNetRegressor
    except ImportError:
        return None
    torch.set_num_threads(2)
    module = torch.nn.Sequential(torch.nn.Linear(n_features, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, n_outputs))
    rng = np.random.default_rng(0)  # Glorot uniform as scikit-learn draws it, reproducibly
    with torch.no_grad():
        for layer in (module[0], module[2]):
            bound = np.sqrt(6.0 / sum(layer.weight.shape))
            for p in (layer.weight, layer.bias):
                p.copy_(torch.from_numpy(rng.uniform(-bound, bound, tuple(p.shape)).astype(np.float32)))
    cls = NeuralNetClassifier if classifier else NeuralNetRegressor
    return cls(module, criterion=torch.nn.CrossEntropyLoss if classifier else torch.nn.MSELoss,
               optimizer=torch.optim.Adam, lr=LR, optimizer__weight_decay=ALPHA / BATCH, max_epochs=EPOCHS,
               batch_size=BATCH, train_split=None, iterator_train__shuffle=True, verbose=0)


def main():
    warnings.simplefilter("ignore", ConvergenceWarning)
    warnings.filterwarnings("ignore", "Got `batch_size`")  # the small sets have fewer than 200 samples
    rows = []
    with threadpool_limits(2):
        for name, loader in CLASSIFICATION_SETS:
            X, y = loader(return_X_y=True)
            folds = StratifiedKFold(5, shuffle=True, random_state=0)
            n_classes = len(np.unique(y))
            rows.append((name, "accuracy", cv(lambda: SkC(**PARAMS), X, y, folds), cv(lambda: FfC(**PARAMS), X, y, folds),
                         cv(lambda: _skorch(True, X.shape[1], n_classes), X, y.astype(np.int64), folds, np.float32)))
        X, y = load_diabetes(return_X_y=True)
        y = (y - y.mean()) / y.std()
        folds = KFold(5, shuffle=True, random_state=0)
        rows.append(("diabetes", "R²", cv(lambda: SkR(**PARAMS), X, y, folds), cv(lambda: FfR(**PARAMS), X, y, folds),
                     cv(lambda: _skorch(False, X.shape[1], 1), X, y.astype(np.float32).reshape(-1, 1), folds,
                        np.float32)))
    print(f"{'data set':<14} {'metric':<9} {'scikit-learn':>12} {'ffnn':>8} {'skorch':>8}   "
          f"{'fit s (sk)':>10} {'fit s (ffnn)':>12} {'fit s (skorch)':>14}")
    totals = [0.0, 0.0, 0.0]
    for name, metric, sk, ff, sko in rows:
        cells = [sk, ff, sko]
        for i, c in enumerate(cells):
            totals[i] += c[1] if c is not None else 0.0
        score = [f"{c[0]:.4f}" if c is not None else "-" for c in cells]
        secs = [f"{c[1]:.2f}" if c is not None else "-" for c in cells]
        print(f"{name:<14} {metric:<9} {score[0]:>12} {score[1]:>8} {score[2]:>8}   "
              f"{secs[0]:>10} {secs[1]:>12} {secs[2]:>14}")
    print(f"{'total fit time':<47} {totals[0]:>10.2f} {totals[1]:>12.2f} "
          f"{(f'{totals[2]:.2f}' if rows[0][4] is not None else '-'):>14}")
    print(f"network {HIDDEN} relu, Adam lr={LR}, batch {BATCH}, {EPOCHS} epochs, alpha={ALPHA}; 2 threads")


if __name__ == "__main__":
    main()
