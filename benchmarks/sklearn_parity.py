"""ffnn.sklearn against scikit-learn's own MLP: 5-fold cross-validated scores and total fit time,
with the same hyperparameters, on scikit-learn's bundled data sets (standardised inputs).

    python benchmarks/sklearn_parity.py

Each library first fits once, untimed, so that what it pays once per process (ffnn: starting its
compiled training loop, about 1.5 s) is printed apart from the fit times.

Accuracy for iris, wine, breast_cancer and digits; R² for diabetes (target standardised too, which
both libraries need for a useful fit with these settings). Not a test: it prints a table.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier as SkC
from sklearn.neural_network import MLPRegressor as SkR
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ffnn.sklearn import MLPClassifier as FfC
from ffnn.sklearn import MLPRegressor as FfR

PARAMS = dict(hidden_layer_sizes=(100,), max_iter=300, random_state=0)


#: The bundled classification data sets both benchmarks score (diabetes, a regression, comes apart).
CLASSIFICATION_SETS = [("iris", load_iris), ("wine", load_wine), ("breast_cancer", load_breast_cancer),
                       ("digits", load_digits)]


def cv(make, X, y, folds, dtype=np.float64):
    """(mean test score, total fit seconds) over ``folds``, inputs standardised on each training fold
    and cast to ``dtype``; None when ``make()`` gives no estimator (a library not installed)."""
    scores, seconds = [], 0.0
    for train, test in folds.split(X, y):
        scaler = StandardScaler().fit(X[train])
        Xtr = scaler.transform(X[train]).astype(dtype, copy=False)
        Xte = scaler.transform(X[test]).astype(dtype, copy=False)
        est = make()
        if est is None:
            return None
        t0 = time.perf_counter()
        est.fit(Xtr, y[train])
        seconds += time.perf_counter() - t0
        scores.append(est.score(Xte, y[test]))
    return float(np.mean(scores)), seconds


def warm_up():
    """Seconds of one tiny fit per library before the timed ones: what each pays once per process —
    for ffnn the start of its compiled training loop (numba's import and the cached machine code;
    compiling it, the first time after installation, is about 20 s per dtype)."""
    X, y = load_iris(return_X_y=True)
    out = {}
    for name, make in (("scikit-learn", SkC), ("ffnn", FfC)):
        t0 = time.perf_counter()
        make(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
        out[name] = time.perf_counter() - t0
    return out


def main():
    warnings.simplefilter("ignore", ConvergenceWarning)
    rows = []
    with threadpool_limits(2):
        once = warm_up()
        for name, loader in CLASSIFICATION_SETS:
            X, y = loader(return_X_y=True)
            folds = StratifiedKFold(5, shuffle=True, random_state=0)
            sk = cv(lambda: SkC(**PARAMS), X, y, folds)
            ff = cv(lambda: FfC(**PARAMS), X, y, folds)
            rows.append((name, "accuracy", sk, ff, 0.01))
        X, y = load_diabetes(return_X_y=True)
        y = (y - y.mean()) / y.std()
        folds = KFold(5, shuffle=True, random_state=0)
        params = dict(PARAMS, learning_rate_init=0.01, early_stopping=True)
        sk = cv(lambda: SkR(**params), X, y, folds)
        ff = cv(lambda: FfR(**params), X, y, folds)
        rows.append(("diabetes", "R²", sk, ff, 0.02))
    print(f"{'data set':<14} {'metric':<9} {'scikit-learn':>12} {'ffnn':>8} {'Δ':>7} {'ok':>3}   "
          f"{'fit s (sk)':>10} {'fit s (ffnn)':>12} {'speed-up':>8}")
    total_sk = total_ff = 0.0
    for name, metric, (s_sk, t_sk), (s_ff, t_ff), slack in rows:
        total_sk += t_sk
        total_ff += t_ff
        ok = "yes" if s_ff >= s_sk - slack else "NO"
        print(f"{name:<14} {metric:<9} {s_sk:>12.4f} {s_ff:>8.4f} {s_ff - s_sk:>+7.4f} {ok:>3}   "
              f"{t_sk:>10.2f} {t_ff:>12.2f} {t_sk / t_ff:>7.2f}x")
    print(f"{'total fit time':<38} {'':>14} {total_sk:>10.2f} {total_ff:>12.2f} {total_sk / total_ff:>7.2f}x")
    print(f"hyperparameters: {PARAMS} (diabetes: learning_rate_init=0.01, early_stopping=True); 2 BLAS threads")
    print(f"once per process, before the timed fits (a tiny fit each): scikit-learn {once['scikit-learn']:.2f} s, "
          f"ffnn {once['ffnn']:.2f} s (the compiled loop's start); with it, ffnn's total is "
          f"{total_ff + once['ffnn']:.2f} s, {total_sk / (total_ff + once['ffnn']):.2f}x")


if __name__ == "__main__":
    main()
