"""Back-propagation you can watch: one training step in each author's notation (:func:`explain`).

``explanation.notations`` names things as each derivation does, ``expr`` writes sums and products
with their numbers, ``forms`` writes the built-in σ′ and losses, ``record`` computes and records the
step, ``paths`` is Gashler's path sum, ``text`` and ``html`` render the record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import losses as _loss
from .._array import to_numpy
from .notations import NOTATIONS, Notation, get_notation
from .record import Equation, Quantity, Step, build_steps, ffnn_name

__all__ = ["explain", "Explanation", "Quantity", "Equation", "Step", "Notation", "NOTATIONS", "MAX_PARAMETERS",
           "MAX_SAMPLES"]

#: The most parameters (weights and biases) :func:`explain` writes out, and the most samples.
MAX_PARAMETERS = 5000
MAX_SAMPLES = 64


@dataclass(frozen=True)
class Explanation:
    """One forward pass, backward pass and gradient-descent update, as :func:`explain` records it.

    Attributes
    ----------
    notation : Notation
        Whose symbols: ``notation.name``, ``.author``, ``.title``.
    sizes : tuple of int
    activations : tuple of str
    loss : str
    learning_rate : float
        η of the update ``w ← w − η ∂J/∂w``.
    X, T : ndarray (N, S_0), (N, S_L)
        The samples, float64, one per row (whatever the notation).
    conventions : tuple of str
        Where the author's conventions differ from the network's (loss, bias sign, layer numbers,
        error sign), one sentence each; nothing is converted silently.
    steps : tuple of Step
        Forward (layer 1..L), loss, backward (L..1), gradients (1..L), update (1..L); each step's
        ``equations`` are :class:`Equation` objects with the author's symbols and the numbers.
    values : dict
        Every value by its key in ffnn's indices (see :func:`ffnn.explanation.record.ffnn_name`).
    """

    notation: Notation
    sizes: tuple
    activations: tuple
    loss: str
    learning_rate: float
    X: np.ndarray
    T: np.ndarray
    conventions: tuple
    steps: tuple
    values: dict

    @property
    def n_samples(self) -> int:
        return self.X.shape[0]

    def equations(self):
        """Every equation, in order."""
        return [e for s in self.steps for e in s.equations]

    def gradient(self, l, k, j):
        """∂J/∂W[l][k, j] (ffnn's indices and sign) as this step computed it."""
        return self.values[("dW", l, k, j)]

    def text(self, width=80, digits=4, max_units=None, max_terms=None):
        """The step as aligned text (see :func:`ffnn.explanation.text.render`)."""
        from .text import render

        return render(self, width=width, digits=digits, max_units=max_units, max_terms=max_terms)

    def __str__(self):
        return self.text()

    def html(self, net):
        """A self-contained HTML page of the step (see :func:`ffnn.explanation.html.page`)."""
        from .html import page

        return page(self, net)


def _conventions(net, loss, nt):
    notes = list(nt.conventions(net, loss))
    if nt.loss_name is not None and loss.name != nt.loss_name:
        notes.append(f"{nt.author} differentiates {nt.loss_text} ({nt.loss_name}); "
                     f"this network's loss is {loss.name}, and every value below is for {loss.name} "
                     f"(the author's own loss would scale the error terms and gradients).")
    act = net.activations[-1]
    if loss.fused(act) is not None:
        notes.append(f"{act.name} with {loss.name}: the output error term is the fused (a − t)/N, which "
                     f"cancels σ′ analytically (ffnn's canonical pair), not ∂J/∂a·σ′.")
    elif not act.elementwise:
        notes.append(f"{act.name} is not elementwise: the output error term multiplies ∂J/∂a by its Jacobian, "
                     f"a_j(g_j − Σ_m g_m a_m), instead of by σ′.")
    from .forms import builtin_activation

    for l, a in enumerate(net.activations, start=1):
        if builtin_activation(a) is None:
            notes.append(f"activation {a.name!r} (layer {l}) is not built in: its σ′ values come from its own "
                         f"derivative function, written {a.name}′(z).")
    if loss.name not in _loss.LOSSES or _loss.LOSSES[loss.name] is not loss:
        notes.append(f"loss {loss.name!r} is not built in: J and ∂J/∂a are its own functions' values.")
    return tuple(notes)


def explain(net, X, T, loss, notation="ffnn", *, learning_rate=0.1) -> Explanation:
    """One training step of ``net`` on (X, T), written out in one author's notation.

    The forward pass, the loss, back-propagation, the gradients and the update
    ``w ← w − η ∂J/∂w``, every quantity named and indexed as the author does and every equation
    with its numbers in it, term by term (``δ`` as the sum over the next layer times σ′ of its net
    input). The numbers are computed again here, in Python floats in the author's order, and equal
    :meth:`ffnn.Network.backward`'s to rounding.

    Parameters
    ----------
    net : Network
        Any built-in or user activations; at most :data:`MAX_PARAMETERS` parameters.
    X : array (N, S_0) or (S_0,)
        One sample (a 1-D X) or a small batch, at most :data:`MAX_SAMPLES`.
    T : array (N, S_L) or (S_L,)
    loss : str or Loss
    notation : str
        ``"sheptunov"``, ``"xing"``, ``"gashler"``, ``"kolar"``, ``"wichmann"`` or ``"ffnn"``:
        Andriy Sheptunov's w_nm, φ and δ_j; Xing Chao's o = f(wx − b) and e = (t − o)²; Mike
        Gashler's y_ij, x_ij, w_ijk and error term e = −δ; Mladen Kolar and Rob McCulloch's layers
        from ℓ = 1 (the input) and W⁽ℓ⁾ of p_ℓ+1 × p_ℓ; Kristian Wichmann's Z⁽ˡ⁾, A⁽ˡ⁾, Δ⁽ˡ⁾, H⁽ˡ⁾
        with samples as columns; or ffnn's own.
    learning_rate : float
        η of the update.

    Returns
    -------
    Explanation
        ``print(e)`` shows it as text; ``e.html(net)`` as a page; ``e.conventions`` says where the
        author's conventions (loss, bias sign, layer numbers) differ from the network's.

    Raises
    ------
    ValueError
        An unknown notation, a network over :data:`MAX_PARAMETERS` parameters or a batch over
        :data:`MAX_SAMPLES` samples, bad X or T (as :meth:`ffnn.Network.loss_and_gradients`), a
        learning rate that is not a positive number.
    """
    nt = get_notation(notation)
    loss = _loss.get_loss(loss)
    if net.n_parameters > MAX_PARAMETERS:
        raise ValueError(f"the network {'-'.join(map(str, net.sizes))} has {net.n_parameters:,} parameters; "
                         f"explain writes out every term and takes at most {MAX_PARAMETERS:,}")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float, np.floating)) \
            or not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
    ref = net.to(np, "float64")
    X = to_numpy(X) if hasattr(X, "shape") else np.asarray(X)
    if getattr(X, "ndim", 2) == 1:
        X = X.reshape(1, -1)
    Xd = np.asarray(ref.check_inputs(X))
    if Xd.shape[0] == 0:
        raise ValueError("X has no samples (0 rows); explain needs at least one")
    if Xd.shape[0] > MAX_SAMPLES:
        raise ValueError(f"X has {Xd.shape[0]} samples; explain writes out every term and takes at most "
                         f"{MAX_SAMPLES} (pass a few rows, X[:4])")
    T = to_numpy(T) if hasattr(T, "shape") else np.asarray(T)
    if getattr(T, "ndim", 2) == 1 and Xd.shape[0] == 1 and net.sizes[-1] > 1:
        T = T.reshape(1, -1)
    Td = np.asarray(ref.check_targets(T, Xd.shape[0]))
    with np.errstate(all="ignore"):
        steps, values = build_steps(ref, Xd, Td, loss, nt, float(learning_rate))
    if not np.isfinite(values[("J",)]):
        raise ValueError(f"the loss is {values[('J',)]} for these inputs and targets; there is no step to show")
    return Explanation(nt, tuple(net.sizes), tuple(a.name for a in net.activations), loss.name,
                       float(learning_rate), Xd, Td, _conventions(net, loss, nt), steps, values)
