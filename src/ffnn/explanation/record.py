"""One training step written out: the forward pass, the loss, back-propagation, the gradients and
the update, every quantity named as one author names it and every equation with its numbers.

The numbers are computed here again, term by term in Python floats and in the order the author
writes each sum (not taken from :meth:`ffnn.Network.backward`): σ and σ′ come from the network's
:class:`~ffnn.Activation` objects, J and ∂J/∂A from its :class:`~ffnn.Loss` (or the fused form of a
canonical pair); everything else is the sums and products below. For every layer l, sample n and
units j, k, m (Wichmann §2, Kolar and McCulloch, Sheptunov, Gashler steps 20–24, Xing Chao §2.2)::

    z[l][n, j] = Σ_k W[l][k, j] a[l−1][n, k] + b[l][j]          a[l][n, j] = σ_l(z[l][n, j])
    δ[L][n, j] = ∂J/∂a[L][n, j] · σ_L′(z[L][n, j])              (the fused error of a canonical pair)
    δ[l][n, j] = (Σ_m δ[l+1][n, m] W[l+1][j, m]) · σ_l′(z[l][n, j])
    ∂J/∂W[l][k, j] = Σ_n δ[l][n, j] a[l−1][n, k]               ∂J/∂b[l][j] = Σ_n δ[l][n, j]
    W[l][k, j] ← W[l][k, j] − η ∂J/∂W[l][k, j]                  (plain gradient descent)

A softmax output without its cross-entropy multiplies by the softmax's Jacobian instead:
δ[L][n, j] = a_j (g_j − Σ_m g_m a_m) with g = ∂J/∂a[L][n, ·].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .expr import Num, Prod, Raw, Sum
from .forms import builtin_activation, derivative_form, loss_form
from .notations import sub

__all__ = ["Quantity", "Equation", "Step", "build_steps", "ffnn_name"]

PHASES = ("forward", "loss", "backward", "gradient", "update")


@dataclass(frozen=True)
class Quantity:
    """One number of the step: the author's ``symbol``, its ``value``, and ``key``, what it is in
    ffnn's indices (``("delta", l, n, j)``, ``("W", l, k, j)``, … 0-based; see :func:`ffnn_name`).
    ``value == factor · (ffnn's quantity)``: −1 for Gashler's e = −δ and Xing Chao's bias."""

    symbol: str
    value: float
    key: tuple
    factor: float = 1.0

    @property
    def ffnn(self) -> str:
        """The same quantity in ffnn's notation (``-delta[2][0, 1]`` for Gashler's e₂₁)."""
        return ("−" if self.factor < 0 else "") + ffnn_name(self.key)


@dataclass(frozen=True)
class Equation:
    """``lhs relation formula = numbers = lhs.value``: ``formula`` is the right side in symbols,
    ``numbers`` (an :mod:`~ffnn.explanation.expr` expression) the same with the values in."""

    lhs: Quantity
    formula: str
    numbers: object
    relation: str = "="
    sample: int | None = None


@dataclass(frozen=True)
class Step:
    """The equations of one phase (forward, loss, backward, gradient, update) for one layer."""

    phase: str
    layer: int | None
    title: str
    equations: tuple = field(default=())


def ffnn_name(key) -> str:
    """ffnn's name of a quantity key: ``("delta", 2, 0, 1)`` → ``delta[2][0, 1]``."""
    kind, *i = key
    if kind == "a":
        return f"X[{i[1]}, {i[2]}]" if i[0] == 0 else f"a[{i[0]}][{i[1]}, {i[2]}]"
    names = {"t": "T[{0}, {1}]", "z": "z[{0}][{1}, {2}]", "fp": "σ′(z[{0}][{1}, {2}])",
             "g": "∂J/∂a[{0}][{1}, {2}]", "delta": "delta[{0}][{1}, {2}]", "W": "W[{0}][{1}, {2}]",
             "b": "b[{0}][{1}]", "dW": "dJ/dW[{0}][{1}, {2}]", "db": "dJ/db[{0}][{1}]",
             "W+": "W[{0}][{1}, {2}] after the step", "b+": "b[{0}][{1}] after the step", "J": "J"}
    return names[kind].format(*i)


class _Builder:
    """Builds the steps of :func:`build_steps`; ``self.v`` holds every value by key."""

    def __init__(self, net, X, T, loss, notation, eta):
        self.net, self.X, self.T, self.loss, self.nt, self.eta = net, X, T, loss, notation, eta
        self.L, self.N = net.n_layers, X.shape[0]
        self.W = [None] + [np.asarray(W, dtype=np.float64) for W in net.weights]
        self.b = [None] + [np.asarray(b, dtype=np.float64) for b in net.biases]
        self.v = {}

    # --- quantities ---------------------------------------------------------------------------

    def q(self, key, symbol, factor=1.0):
        return Quantity(symbol, factor * self.v[key], key, factor)

    def qa(self, l, n, j):
        return self.q(("a", l, n, j), self.nt.a(l, j, n))

    def qw(self, l, k, j):
        return self.q(("W", l, k, j), self.nt.w(l, k, j))

    def qb(self, l, j):
        return self.q(("b", l, j), self.nt.b(l, j), self.nt.bias_sign)

    def qdelta(self, l, n, j):
        return self.q(("delta", l, n, j), self.nt.delta(l, j, n), self.nt.delta_sign)

    def eq(self, key, symbol, formula, numbers, factor=1.0, relation="=", sample=None, value=None):
        """An equation whose left side's value is ``numbers`` evaluated (or ``value`` when given)."""
        v = numbers.value if value is None else value
        self.v[key] = v / factor
        return Equation(Quantity(symbol, v, key, factor), formula, numbers, relation, sample)

    # --- the phases ---------------------------------------------------------------------------

    def z_formula(self, l, u, n):
        nt, k = self.nt, self.nt.prev
        w, a = nt.w(l, k, u), nt.a(l - 1, k, n)
        wa = f"{w}·{a}" if nt.weight_first else f"{a}·{w}"
        bias = nt.b(l, u)
        if nt.bias_sign < 0:
            return f"Σ{_letter(k)} {wa} − {bias}"
        return f"{bias} + Σ{_letter(k)} {wa}" if nt.bias_first else f"Σ{_letter(k)} {wa} + {bias}"

    def forward(self, l):
        nt, act, W, b = self.nt, self.net.activations[l - 1], self.W[l], self.b[l]
        eqs = []
        for n in range(self.N):
            zs = []
            for u in range(W.shape[1]):
                terms = []
                for p in range(W.shape[0]):
                    pair = (self.qw(l, p, u), self.qa(l - 1, n, p))
                    terms.append((1, Prod(tuple(Num(q.value) for q in (pair if nt.weight_first else pair[::-1])))))
                bq = Num(float(nt.bias_sign * b[u]))
                if nt.bias_sign < 0:
                    terms.append((-1, bq))
                elif nt.bias_first:
                    terms.insert(0, (1, bq))
                else:
                    terms.append((1, bq))
                e = self.eq(("z", l, n, u), nt.z(l, u, n), self.z_formula(l, u, n), Sum(tuple(terms)), sample=n)
                zs.append(e.lhs.value)
                eqs.append(e)
            a_row = np.asarray(act(np.asarray([zs], dtype=np.float64)), dtype=np.float64)[0]
            name = nt.f(l, self.L)
            for u, (zv, av) in enumerate(zip(zs, a_row)):
                self.v[("a", l, n, u)] = float(av)
                if act.elementwise:
                    numbers = Raw(name + "({0})", (zv,), float(av))
                    formula = f"{name}({nt.z(l, u, n)})"
                else:
                    numbers = Raw(f"{name}(" + ", ".join(f"{{{i}}}" for i in range(len(zs))) + f"){sub(nt.i(u))}",
                                  tuple(zs), float(av))
                    formula = f"{name}({nt.z(l, '·', n)}){sub(nt.i(u))}" if nt.indexes_samples else \
                        f"{name}(…){sub(nt.i(u))}"
                eqs.append(Equation(self.qa(l, n, u), formula, numbers, sample=n))
            if act.elementwise:
                fp = np.asarray(act.derivative(np.asarray([zs], dtype=np.float64)), dtype=np.float64)[0]
                for u, v in enumerate(fp):
                    self.v[("fp", l, n, u)] = float(v)
        return Step("forward", l, f"forward, layer {nt.layer(l)}", tuple(eqs))

    def loss_step(self):
        nt, L = self.nt, self.L
        act, form = self.net.activations[-1], loss_form(self.loss)
        A = self.array("a", L)
        fused = self.loss.fused(act)
        J = float(fused.value(self.array("z", L), self.T) if fused is not None else self.loss.value(A, self.T))
        k, n = sub(nt.this), "n"
        symbols = dict(t=nt.t(nt.this, "n" if nt.indexes_samples else None),
                       a=nt.a(L, nt.this, "n" if nt.indexes_samples else None), k=k, n=sub(n))
        if form is None:
            eq = self.eq(("J",), nt.loss_symbol, f"{self.loss.name}(T, A)", Num(J), value=J)
            return Step("loss", None, "loss", (eq,))
        terms = tuple((form.term_sign, Raw(form.term, (float(self.T[s, u]), float(A[s, u])), 0.0))
                      for s in range(self.N) for u in range(A.shape[1]))
        factor = Raw(form.factor.replace("{N}", str(self.N)), (), form.factor_value(self.N))
        numbers = Prod((factor, Sum(terms))) if form.factor else Sum(terms)
        formula = form.formula.format(**symbols)
        if self.N > 1 and "{n}" not in form.formula:
            formula = formula.replace("Σ", f"Σ{sub('n')}Σ", 1)
        eq = self.eq(("J",), nt.loss_symbol, formula, numbers, value=J)
        return Step("loss", None, "loss", (eq,))

    def array(self, kind, l):
        return np.array([[self.v[(kind, l, n, u)] for u in range(self.net.sizes[l])] for n in range(self.N)])

    def output_deltas(self):
        nt, L, act = self.nt, self.L, self.net.activations[-1]
        A, Z = self.array("a", L), self.array("z", L)
        fused, form = self.loss.fused(act), loss_form(self.loss)
        S = self.net.sizes[L]
        eqs = []
        if fused is not None:
            D = np.asarray(fused.delta(Z, A, self.T), dtype=np.float64)
            exact = bool(np.allclose(self.T.sum(axis=1), 1.0, rtol=0, atol=1e-12)) or act.elementwise
            template = "({0} − {1})/{2}" if exact else "({0}·{3} − {1})/{2}"
            neg = "({1} − {0})/{2}" if exact else "({1} − {0}·{3})/{2}"
            for n in range(self.N):
                for u in range(S):
                    t, a = float(self.T[n, u]), float(A[n, u])
                    f = neg if nt.delta_sign < 0 else template
                    formula = f.format(nt.a(L, u, n), nt.t(u, n), "N", f"Σ{_letter(nt.next)}{nt.t(nt.next, n)}")
                    raw = Raw(neg if nt.delta_sign < 0 else template, (a, t, self.N, float(self.T[n].sum())),
                              float(nt.delta_sign * D[n, u]))
                    eqs.append(self.eq(("delta", L, n, u), nt.delta(L, u, n), formula, raw, nt.delta_sign, sample=n))
            return eqs
        G = np.asarray(self.loss.gradient(A, self.T), dtype=np.float64)
        for n in range(self.N):
            for u in range(S):
                self.v[("g", L, n, u)] = float(G[n, u])
        for n in range(self.N):
            for u in range(S):
                a, t = float(A[n, u]), float(self.T[n, u])
                sym_a, sym_t = nt.a(L, u, n), nt.t(u, n)
                sign = nt.delta_sign
                if form is not None:
                    tmpl = form.neg_grad if sign < 0 else form.grad
                    g_formula = tmpl.format(sym_a, sym_t, "N")
                    g_raw = Raw(tmpl, (a, t, self.N), sign * float(G[n, u]))
                else:
                    g_formula = ("−" if sign < 0 else "") + f"∂{nt.loss_symbol}/∂{sym_a}"
                    g_raw = Num(sign * float(G[n, u]))
                if nt.names_gradient:
                    eqs.append(self.eq(("g", L, n, u), nt.g(L, u, n), g_formula, g_raw, sign, sample=n))
                    g_formula = nt.g(L, u, n)
                    g_raw = Num(eqs[-1].lhs.value)
                if act.elementwise:
                    eqs.append(self.fp_equation(L, n, u))
                    numbers = Prod((g_raw, Num(self.v[("fp", L, n, u)])))
                    formula = f"{_group(g_formula)}·{nt.fp(L, u, n, L)}"
                else:  # a softmax without its cross-entropy: the Jacobian a_j (g_j − Σ_m g_m a_m)
                    inner = Sum(tuple((1, Prod((Num(float(G[n, m])), Num(float(A[n, m]))))) for m in range(S)))
                    numbers = Prod((Num(a), Sum(((1, Num(float(G[n, u]))), (-1, inner)))), sign)
                    formula = f"{'−' if sign < 0 else ''}{sym_a}(g{sub(nt.i(u))} − Σ{sub(nt.next)} g{sub(nt.next)}·" \
                              f"{nt.a(L, nt.next, n)}), g = ∂{nt.loss_symbol}/∂{nt.a(L, '·', n)}"
                eqs.append(self.eq(("delta", L, n, u), nt.delta(L, u, n), formula, numbers, sign, sample=n))
        return eqs

    def fp_equation(self, l, n, u):
        nt, act = self.nt, self.net.activations[l - 1]
        formula, template = derivative_form(act, nt.a(l, u, n), nt.z(l, u, n))
        a, z = self.v[("a", l, n, u)], self.v[("z", l, n, u)]
        return Equation(self.q(("fp", l, n, u), nt.fp(l, u, n, self.L)), formula,
                        Raw(template, (a, z), self.v[("fp", l, n, u)]), sample=n)

    def hidden_deltas(self, l):
        nt, W = self.nt, self.W[l + 1]
        m = nt.next
        sign = nt.delta_sign
        eqs = []
        for n in range(self.N):
            for u in range(self.net.sizes[l]):
                terms = []
                for p in range(W.shape[1]):
                    d, w = self.qdelta(l + 1, n, p), self.qw(l + 1, u, p)
                    terms.append((1, Prod(tuple(Num(q.value) for q in ((d, w) if nt.back_delta_first else (w, d))))))
                s = Sum(tuple(terms))
                pair = (nt.delta(l + 1, m, n), nt.w(l + 1, u, m))
                formula = f"Σ{_letter(m)} " + "·".join(pair if nt.back_delta_first else pair[::-1])
                eqs.append(self.fp_equation(l, n, u))
                if nt.names_gradient:
                    eqs.append(self.eq(("g", l, n, u), nt.g(l, u, n), formula, s, sign, sample=n))
                    s, formula = Num(eqs[-1].lhs.value), nt.g(l, u, n)
                else:
                    formula = f"({formula})"
                numbers = Prod((s, Num(self.v[("fp", l, n, u)])))
                eqs.append(self.eq(("delta", l, n, u), nt.delta(l, u, n), f"{formula}·{nt.fp(l, u, n, self.L)}",
                                   numbers, sign, sample=n))
        return eqs

    def backward(self, l):
        eqs = self.output_deltas() if l == self.L else self.hidden_deltas(l)
        return Step("backward", l, f"backward, layer {self.nt.layer(l)}", tuple(eqs))

    def gradient(self, l):
        nt, W = self.nt, self.W[l]
        sign = nt.delta_sign  # ∂J/∂w = sign·(the author's error term)·a
        bsign = sign * nt.bias_sign
        over = f"Σ{_letter('n')} " if self.N > 1 else ""

        def w_formula(p, u):
            d, a = nt.delta(l, u, "n" if self.N > 1 else 0), nt.a(l - 1, p, "n" if self.N > 1 else 0)
            return ("−" if sign < 0 else "") + over + "·".join((d, a) if nt.grad_delta_first else (a, d))

        def b_formula(u):
            return ("−" if bsign < 0 else "") + over + nt.delta(l, u, "n" if self.N > 1 else 0)

        eqs = []
        for p in range(W.shape[0]):
            for u in range(W.shape[1]):
                terms = []
                for n in range(self.N):
                    pair = (Num(self.qdelta(l, n, u).value), Num(self.v[("a", l - 1, n, p)]))
                    terms.append((1, Prod(pair if nt.grad_delta_first else pair[::-1])))
                numbers = Prod((Sum(tuple(terms)),), sign) if self.N > 1 else Prod(terms[0][1].factors, sign)
                eqs.append(self.eq(("dW", l, p, u), nt.dw(l, p, u), w_formula(p, u), numbers))
        for u in range(W.shape[1]):
            terms = tuple((1, Num(self.qdelta(l, n, u).value)) for n in range(self.N))
            numbers = Prod((Sum(terms),) if self.N > 1 else (terms[0][1],), bsign)
            eqs.append(self.eq(("db", l, u), nt.db(l, u), b_formula(u), numbers, nt.bias_sign))
        return Step("gradient", l, f"gradients, layer {nt.layer(l)}", tuple(eqs))

    def update(self, l):
        nt, W = self.nt, self.W[l]
        eta = Num(float(self.eta))
        eqs = []
        for p in range(W.shape[0]):
            for u in range(W.shape[1]):
                w, g = self.qw(l, p, u), self.q(("dW", l, p, u), nt.dw(l, p, u))
                eqs.append(self.eq(("W+", l, p, u), w.symbol, f"{w.symbol} − η·{g.symbol}",
                                   Sum(((1, Num(w.value)), (-1, Prod((eta, Num(g.value)))))), relation="←"))
        for u in range(W.shape[1]):
            f = self.nt.bias_sign
            b, g = self.qb(l, u), self.q(("db", l, u), nt.db(l, u), f)
            eqs.append(self.eq(("b+", l, u), b.symbol, f"{b.symbol} − η·{g.symbol}",
                               Sum(((1, Num(b.value)), (-1, Prod((eta, Num(g.value)))))), f, relation="←"))
        return Step("update", l, f"update, layer {nt.layer(l)} (η = {self.eta:g})", tuple(eqs))

    def steps(self):
        for l in range(1, self.L + 1):
            for p in range(self.W[l].shape[0]):
                for u in range(self.W[l].shape[1]):
                    self.v[("W", l, p, u)] = float(self.W[l][p, u])
            for u in range(self.W[l].shape[1]):
                self.v[("b", l, u)] = float(self.b[l][u])
        for n in range(self.N):
            for u in range(self.net.sizes[0]):
                self.v[("a", 0, n, u)] = float(self.X[n, u])
            for u in range(self.net.sizes[-1]):
                self.v[("t", n, u)] = float(self.T[n, u])
        out = [self.forward(l) for l in range(1, self.L + 1)]
        out.append(self.loss_step())
        out += [self.backward(l) for l in range(self.L, 0, -1)]
        out += [self.gradient(l) for l in range(1, self.L + 1)]
        out += [self.update(l) for l in range(1, self.L + 1)]
        return tuple(out), self.v


def _group(text):
    return f"({text})" if " " in text and not text.startswith("(") else text


def _letter(index):
    """A summation index under Σ: a subscript letter where Unicode has one (ₖ), else as it is."""
    return sub(index)


def build_steps(net, X, T, loss, notation, eta):
    """(steps, values): the :class:`Step` of each phase and layer, and every value by key."""
    return _Builder(net, X, T, loss, notation, eta).steps()
