"""Drop-in scikit-learn estimators: ``from ffnn.sklearn import MLPClassifier, MLPRegressor``.

``est.save(path)`` writes a fitted estimator to one safetensors file and ``load(path)`` reads it
back. Importing this package imports scikit-learn; ``import ffnn`` alone never does.

    estimators.py  MLPClassifier, MLPRegressor: labels and targets, fit, partial_fit, predict
    _base.py       what both share: parameters, initialisation, scikit-learn's fit loops with
                   ffnn computing each step, the stopping rule, schedules and callbacks
    _persist.py    the estimator file: its schema, writing and reading (``save`` and ``load``)
"""

from .estimators import MLPClassifier, MLPRegressor, load

__all__ = ["MLPClassifier", "MLPRegressor", "load"]
