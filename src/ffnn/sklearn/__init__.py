"""Drop-in scikit-learn estimators: ``from ffnn.sklearn import MLPClassifier, MLPRegressor``.

Importing this package imports scikit-learn; ``import ffnn`` alone never does.
"""

from ._persist import load
from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "load"]
