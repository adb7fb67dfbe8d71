"""How the built-in activations' derivatives and losses are written, for display.

The values never come from here: σ′ is the :class:`ffnn.Activation`'s own ``derivative``, ∂J/∂A the
:class:`ffnn.Loss`'s own ``gradient`` (or its fused form). This module only writes them as the
derivations do (Sheptunov's φ′ = φ(1 − φ), Wichmann's Δ⁽ᴸ⁾ = (A − T)/N, …), with the numbers in.
A user's activation or loss has no written form: its values are shown as they are.
"""

from __future__ import annotations

from ..activations import get_activation
from ..losses import LOSSES

__all__ = ["builtin_activation", "derivative_form", "loss_form"]


def builtin_activation(act) -> str | None:
    """The built-in's base name ("leaky_relu"), or None for a user's activation (whatever its name)."""
    try:
        same = get_activation(act.name) == act
    except (ValueError, TypeError):
        return None
    return act.name.split("(")[0] if same else None


def derivative_form(act, A, Z):
    """(σ′ written with symbols A = σ(z) and Z = z, the same as a template with {0} = a, {1} = z)."""
    kind = builtin_activation(act)
    p = act.params
    if kind == "identity":
        return "1", "1"
    if kind == "sigmoid":
        return f"{A}(1 − {A})", "{0}(1 − {0})"
    if kind == "tanh":
        return f"1 − {A}²", "1 − {0}²"
    if kind in ("relu", "leaky_relu"):
        low = "0" if kind == "relu" else f"{p.get('slope', 0.01):g}"
        return f"1 if {Z} > 0, else {low}", "1 if {1} > 0, else " + low
    if kind == "elu":
        alpha = f"{p.get('alpha', 1.0):g}"
        return f"1 if {Z} > 0, else {A} + {alpha}", "1 if {1} > 0, else {0} + " + alpha
    if kind == "softplus":
        return f"1/(1 + e^−{Z})", "1/(1 + e^−{1})"
    name = act.name.split("(")[0]
    return f"{name}′({Z})", name + "′({1})"


class LossForm:
    """A loss written out: J as a factor times a sum of per-entry terms, and ∂J/∂a of one entry."""

    def __init__(self, factor, factor_value, term, term_sign, grad, neg_grad, formula):
        self.factor, self.factor_value = factor, factor_value     # "½" / "1/(2·{N})" and its value (N → number)
        self.term, self.term_sign = term, term_sign                # template of args (t, a), and its sign in J
        self.grad, self.neg_grad = grad, neg_grad                  # templates of args (a, t, N)
        self.formula = formula                                     # J with {t}, {a}, {k} (the index) symbols


def loss_form(loss) -> LossForm | None:
    """The written form of a built-in loss, None for a user's."""
    if LOSSES.get(loss.name) is not loss:
        return None
    return {
        "half_sse": LossForm("½", lambda N: 0.5, "({0} − {1})²", 1, "{0} − {1}", "{1} − {0}",
                             "½ Σ{k} ({t} − {a})²"),
        "sse": LossForm("", lambda N: 1.0, "({0} − {1})²", 1, "2({0} − {1})", "2({1} − {0})", "Σ{k} ({t} − {a})²"),
        "mse": LossForm("1/(2·{N})", lambda N: 0.5 / N, "({0} − {1})²", 1, "({0} − {1})/{2}", "({1} − {0})/{2}",
                        "1/(2N) Σ{n}Σ{k} ({t} − {a})²"),
        "cross_entropy": LossForm("1/{N}", lambda N: 1.0 / N, "{0}·log {1}", -1, "−{1}/({2}·{0})",
                                  "{1}/({2}·{0})", "−1/N Σ{n}Σ{k} {t} log {a}"),
        "binary_cross_entropy": LossForm(
            "1/{N}", lambda N: 1.0 / N, "{0}·log {1} + (1 − {0})·log(1 − {1})", -1,
            "({0} − {1})/({2}·{0}(1 − {0}))", "({1} − {0})/({2}·{0}(1 − {0}))",
            "−1/N Σ{n}Σ{k} [{t} log {a} + (1 − {t}) log(1 − {a})]"),
    }[loss.name]
