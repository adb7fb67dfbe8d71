"""How each author names the quantities of one training step: symbols, index bases and conventions.

One :class:`Notation` per derivation (see the references page of the documentation), all mapped to
ffnn's batch-first notation (layer l = 1..L, ``z[l] = a[l−1] @ W[l] + b[l]``, ``δ[l] = ∂J/∂z[l]``):

============  ==============================================  ===================================
notation      the author's symbols                            ffnn's
============  ==============================================  ===================================
sheptunov     o_j, net_j, w_ij from i onto j, φ, E, δ_j         a, z, ``W[l][i, j]``, σ, J, δ
xing          o_j⁽ⁱ⁾ = f_i(Σ_k w_jk⁽ⁱ⁾ o_k⁽ⁱ⁻¹⁾ − b_j⁽ⁱ⁾), e       a, ``W[i][k, j]``, **b = −ours**, J
gashler       y_ij, x_ij, w_ijk into i, j from k, E, e_ij       a, z, ``W[i][k, j]``, J, **e = −δ**
kolar         a⁽ℓ⁾, Z⁽ℓ⁾ with ℓ = 1 the input, w_kj⁽ℓ⁾, δ⁽ℓ⁾, L   a[ℓ−1], z[ℓ−1], ``W[ℓ][j, k]``, δ[ℓ−1]
wichmann      A⁽ˡ⁾, Z⁽ˡ⁾ (S_l × N), W⁽ˡ⁾_ij, Δ⁽ˡ⁾, H⁽ˡ⁾, J        transposes; H = δᵀ, Δ = (∂J/∂a)ᵀ
ffnn          z[l][n, j], a[l][n, j], W[l][k, j], delta       itself
============  ==============================================  ===================================

A notation only names things; :mod:`ffnn.explanation.record` computes them.
"""

from __future__ import annotations

__all__ = ["Notation", "NOTATIONS", "get_notation", "sub", "sup"]

_SUB = str.maketrans("0123456789+-()aeijklmnorstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₍₎ₐₑᵢⱼₖₗₘₙₒᵣₛₜᵤᵥₓ")
_SUP = str.maketrans("0123456789+-()ilnLN", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾ⁱˡⁿᴸᴺ")


def sub(*indices) -> str:
    """Indices as a subscript: ``sub(1, 7, 3)`` is ``₁₇₃``; commas when one has two digits (``₁,₁₂,₃``)."""
    parts = [str(i) for i in indices]
    text = ",".join(parts) if any(len(p) > 1 for p in parts) else "".join(parts)
    return text.translate(_SUB)


def sup(layer) -> str:
    """A layer as a parenthesised superscript: ``sup(2)`` is ``⁽²⁾``."""
    return f"({layer})".translate(_SUP)


class Notation:
    """One author's names for the quantities of a training step.

    Layers ``l`` are ffnn's (1..L, 0 the input); units ``j`` (this layer), ``k`` (the layer before)
    and ``m`` (the layer after) are 0-based integers, or letters for a formula. ``n`` is the sample
    (0-based), shown only by the notations that index samples. Each method returns the symbol as
    the author writes it, with the author's index base (:attr:`base`) and layer numbering.
    """

    name = author = title = ""
    base = 1                 # the first unit's index: 1 (the authors' sums run from 1), 0 (ffnn, Gashler)
    loss_name = None         # the loss the author differentiates (ffnn's name)
    loss_symbol = "J"
    loss_text = ""           # the author's loss, as the author writes it
    prev, this, next = "k", "j", "m"     # letters of the generic indices
    weight_first = True      # the net input as Σ w·a (True) or Σ a·w
    back_delta_first = True  # the back-propagated sum as Σ δ·w (True) or Σ w·δ
    grad_delta_first = True  # ∂J/∂w as δ·a (True) or a·δ
    delta_sign = 1           # the author's error term is this times δ (Gashler: −1)
    bias_sign = 1            # the author's bias is this times b (Xing Chao: −1)
    bias_first = False       # the net input as b + Σ w·a (Kolar and McCulloch)
    names_gradient = False   # whether ∂J/∂a of a layer has a name of its own (Wichmann's Δ)
    indexes_samples = False  # whether the symbols carry the sample (ffnn, Wichmann)

    def i(self, j):
        """A unit index as the author writes it."""
        return j + self.base if isinstance(j, int) else j

    def layer(self, l):
        """Layer l as the author numbers it."""
        return l

    def f(self, l, L):
        """The activation of layer l."""
        return f"f{sub(self.layer(l))}"

    def conventions(self, net, loss):
        """Where this notation's conventions differ from the network's, one sentence each."""
        return []

    # subclasses define: a, z, w, b, t, fp, delta, dw, db, g (when names_gradient)


class Ffnn(Notation):
    name, author, title = "ffnn", "ffnn", "ffnn's own notation (batch-first, one sample per row)"
    base, loss_symbol, indexes_samples = 0, "J", True
    weight_first = grad_delta_first = False

    def _n(self, n):
        return "n" if n is None else n

    def a(self, l, j, n=None):
        return f"X[{self._n(n)}, {j}]" if l == 0 else f"a[{l}][{self._n(n)}, {j}]"

    def z(self, l, j, n=None):
        return f"z[{l}][{self._n(n)}, {j}]"

    def w(self, l, k, j):
        return f"W[{l}][{k}, {j}]"

    def b(self, l, j):
        return f"b[{l}][{j}]"

    def t(self, j, n=None):
        return f"T[{self._n(n)}, {j}]"

    def f(self, l, L):
        return f"σ{sub(l)}"

    def fp(self, l, j, n=None, L=None):
        return f"σ′{sub(l)}({self.z(l, j, n)})"

    def delta(self, l, j, n=None):
        return f"delta[{l}][{self._n(n)}, {j}]"

    def dw(self, l, k, j):
        return f"dJ/dW[{l}][{k}, {j}]"

    def db(self, l, j):
        return f"dJ/db[{l}][{j}]"

    def conventions(self, net, loss):
        return ["ffnn: one sample per row (X is N × S₀), W[l] is S_{l−1} × S_l, indices from 0; "
                "delta[l] = ∂J/∂z[l]."]


class Sheptunov(Notation):
    name, author = "sheptunov", "Andriy Sheptunov"
    title = "Back Propagation Explanation (Sheptunov): ∂E/∂w_ij = δ_j o_i"
    loss_name, loss_symbol = "half_sse", "E"
    prev, next = "i", "m"
    loss_text = "E = ½ Σ (o − t)²"
    back_delta_first = False

    def a(self, l, j, n=None):
        return f"o{sub(self.i(j))}{sup(l)}"

    def z(self, l, j, n=None):
        return f"net{sub(self.i(j))}{sup(l)}"

    def w(self, l, k, j):
        return f"w{sub(self.i(k), self.i(j))}{sup(l)}"

    def b(self, l, j):
        return f"b{sub(self.i(j))}{sup(l)}"

    def t(self, j, n=None):
        return f"t{sub(self.i(j))}"

    def f(self, l, L):
        return "φ"

    def fp(self, l, j, n=None, L=None):
        return f"φ′({self.z(l, j)})"

    def delta(self, l, j, n=None):
        return f"δ{sub(self.i(j))}{sup(l)}"

    def dw(self, l, k, j):
        return f"∂E/∂{self.w(l, k, j)}"

    def db(self, l, j):
        return f"∂E/∂{self.b(l, j)}"

    def conventions(self, net, loss):
        notes = ["Sheptunov numbers the neurons of two adjacent layers only; the layer is added here as a "
                 "superscript, o⁽⁰⁾ being the inputs x. Indices count from 1, as his x₁ … x_n do.",
                 "Sheptunov's neurons have no bias; ffnn's have one, shown as b_j in net_j = Σᵢ wᵢⱼ oᵢ + b_j."]
        others = sorted({a.name for a in net.activations if a.name != "sigmoid"})
        if others:
            notes.append(f"Sheptunov's φ is the sigmoid; this network also uses {', '.join(others)}, "
                         f"written φ here too (its own φ′ is used).")
        return notes


class Xing(Notation):
    name, author = "xing", "Xing Chao"
    title = "Back Propagation Explanation (Xing Chao): o = f(wx − b), e = (t − o)², Δw = −η ∂e/∂w"
    loss_name, loss_symbol = "sse", "e"
    loss_text = "e = Σ (t − o)²"
    bias_sign = -1
    names_gradient = True

    def a(self, l, j, n=None):
        return f"o{sub(self.i(j))}{sup(l)}"

    def z(self, l, j, n=None):
        return f"(w{sub(self.i(j))}{sup(l)}·o{sup(l - 1)} − b{sub(self.i(j))}{sup(l)})"

    def w(self, l, k, j):
        return f"w{sub(self.i(j), self.i(k))}{sup(l)}"

    def b(self, l, j):
        return f"b{sub(self.i(j))}{sup(l)}"

    def t(self, j, n=None):
        return f"t{sub(self.i(j))}"

    def f(self, l, L):
        return f"f{sub(l)}"

    def fp(self, l, j, n=None, L=None):
        return f"f′{sub(l, self.i(j))}"

    def g(self, l, j, n=None):
        return f"∂e/∂{self.a(l, j)}"

    def delta(self, l, j, n=None):
        return f"∂e/∂{self.a(l, j)}·{self.fp(l, j)}"

    def dw(self, l, k, j):
        return f"∂e/∂{self.w(l, k, j)}"

    def db(self, l, j):
        return f"∂e/∂{self.b(l, j)}"

    def conventions(self, net, loss):
        return ["Xing Chao subtracts his bias, o = f(wx − b): his b is minus ffnn's b, so ∂e/∂b is minus "
                "ffnn's ∂J/∂b; both are shown with his sign.",
                "Xing Chao's w_jk⁽ⁱ⁾ feeds node j of layer i from node k of layer i − 1 (ffnn's W[i][k, j]); "
                "indices count from 1."]


class Gashler(Notation):
    name, author = "gashler", "Mike Gashler"
    title = "A thorough derivation of back-propagation (Gashler): e_ij = Σ e w f′, ∂E/∂w_ijk = −e_ij y_i−1,k"
    base, loss_name, loss_symbol = 0, "half_sse", "E"
    loss_text = "E = ½ Σ (t − y)²"
    delta_sign = -1

    def a(self, l, j, n=None):
        return f"y{sub(l, self.i(j))}"

    def z(self, l, j, n=None):
        return f"x{sub(l, self.i(j))}"

    def w(self, l, k, j):
        return f"w{sub(l, self.i(j), self.i(k))}"

    def b(self, l, j):
        return f"b{sub(l, self.i(j))}"

    def t(self, j, n=None):
        return f"t{sub(self.i(j))}"

    def f(self, l, L):
        return f"f{sub(l)}"

    def fp(self, l, j, n=None, L=None):
        return f"f′{sub(l)}({self.z(l, j)})"

    def delta(self, l, j, n=None):
        return f"e{sub(l, self.i(j))}"

    def dw(self, l, k, j):
        return f"∂E/∂{self.w(l, k, j)}"

    def db(self, l, j):
        return f"∂E/∂{self.b(l, j)}"

    def conventions(self, net, loss):
        return ["Gashler's error term is e = −δ (minus ffnn's δ = ∂J/∂x): e_ij = (t − y)f′ at the output, so "
                "∂E/∂w_ijk = −e_ij y_i−1,k.",
                "Gashler's network has no biases; ffnn's has, shown as b_ij in x_ij = Σ_k w_ijk y_i−1,k + b_ij.",
                "Layers and nodes count from 0, layer 0 being the inputs (w_173 feeds node 7 of layer 1 "
                "from input 3)."]


class Kolar(Notation):
    name, author = "kolar", "Mladen Kolar and Rob McCulloch"
    title = "Back Propagation (Kolar and McCulloch): δ⁽ℓ⁾ = g′(Z⁽ℓ⁾) ⊙ W⁽ℓ⁾ᵀ δ⁽ℓ⁺¹⁾"
    loss_name, loss_symbol = "sse", "L"
    loss_text = "L = (y − f)²"
    prev, next = "i", "k"
    bias_first = True

    def layer(self, l):
        return l + 1

    def a(self, l, j, n=None):
        return f"a{sub(self.i(j))}{sup(l + 1)}"

    def z(self, l, j, n=None):
        return f"Z{sub(self.i(j))}{sup(l + 1)}"

    def w(self, l, k, j):
        return f"w{sub(self.i(j), self.i(k))}{sup(l)}"

    def b(self, l, j):
        return f"b{sub(self.i(j))}{sup(l)}"

    def t(self, j, n=None):
        return f"y{sub(self.i(j))}"

    def f(self, l, L):
        return "gᴸ" if l == L else "g"

    def fp(self, l, j, n=None, L=None):
        return f"{'(gᴸ)′' if l == L else 'g′'}({self.z(l, j)})"

    def delta(self, l, j, n=None):
        return f"δ{sub(self.i(j))}{sup(l + 1)}"

    def dw(self, l, k, j):
        return f"∂L/∂{self.w(l, k, j)}"

    def db(self, l, j):
        return f"∂L/∂{self.b(l, j)}"

    def conventions(self, net, loss):
        notes = ["Kolar and McCulloch number the input as layer 1: their a⁽ℓ⁾, Z⁽ℓ⁾, δ⁽ℓ⁾ are ffnn's a[ℓ−1], "
                 "z[ℓ−1], delta[ℓ−1]; their W⁽ℓ⁾ (p_ℓ+1 × p_ℓ) and b⁽ℓ⁾ feed layer ℓ + 1 and are ffnn's W[ℓ]ᵀ "
                 "and b[ℓ]. Indices count from 1."]
        hidden = {a.name for a in net.activations[:-1]}
        if len(hidden) > 1:
            notes.append(f"Kolar and McCulloch use one g on every hidden layer; this network's hidden layers "
                         f"use {', '.join(sorted(hidden))}, each written g with its own g′.")
        if net.sizes[-1] > 1:
            notes.append("Their slides have one outcome; with several, L sums (y_k − f_k)² over the outputs.")
        return notes


class Wichmann(Notation):
    name, author = "wichmann", "Kristian Wichmann"
    title = "General feed forward neural networks (Wichmann): H⁽ˡ⁾ = Δ⁽ˡ⁾ ⊙ σ′(Z⁽ˡ⁾), Δ⁽ˡ⁻¹⁾ = W⁽ˡ⁾ᵗ H⁽ˡ⁾"
    loss_name, loss_symbol = "mse", "J"
    loss_text = "J = 1/(2N) Σ ‖a − t‖²"
    prev, this, next = "j", "i", "m"
    names_gradient = indexes_samples = True
    back_delta_first = False

    def _n(self, n):
        return "n" if n is None else n + 1 if isinstance(n, int) else n

    def a(self, l, j, n=None):
        return f"{'X' if l == 0 else 'A'}{sub(self.i(j), self._n(n))}{'' if l == 0 else sup(l)}"

    def z(self, l, j, n=None):
        return f"Z{sub(self.i(j), self._n(n))}{sup(l)}"

    def w(self, l, k, j):
        return f"W{sub(self.i(j), self.i(k))}{sup(l)}"

    def b(self, l, j):
        return f"b{sub(self.i(j))}{sup(l)}"

    def t(self, j, n=None):
        return f"T{sub(self.i(j), self._n(n))}"

    def f(self, l, L):
        return f"σ{sub(l)}"

    def fp(self, l, j, n=None, L=None):
        return f"σ′{sub(l)}({self.z(l, j, n)})"

    def g(self, l, j, n=None):
        return f"Δ{sub(self.i(j), self._n(n))}{sup(l)}"

    def delta(self, l, j, n=None):
        return f"H{sub(self.i(j), self._n(n))}{sup(l)}"

    def dw(self, l, k, j):
        return f"∂J/∂{self.w(l, k, j)}"

    def db(self, l, j):
        return f"∂J/∂{self.b(l, j)}"

    def conventions(self, net, loss):
        return ["Wichmann keeps one sample per column: X, Z⁽ˡ⁾, A⁽ˡ⁾, T are S_l × N, W⁽ˡ⁾ is S_l × S_l−1 "
                "(ffnn's W[l]ᵀ), H⁽ˡ⁾ is ffnn's delta[l]ᵀ and Δ⁽ˡ⁾ = ∂J/∂A⁽ˡ⁾. Indices count from 1."]


NOTATIONS = {n.name: n for n in (Sheptunov(), Xing(), Gashler(), Kolar(), Wichmann(), Ffnn())}


def get_notation(name) -> Notation:
    """The :class:`Notation` called ``name`` (one of :data:`NOTATIONS`), or a ValueError listing them."""
    if isinstance(name, Notation):
        return name
    if isinstance(name, str) and name.strip().lower() in NOTATIONS:
        return NOTATIONS[name.strip().lower()]
    raise ValueError(f"unknown notation {name!r}; choose from {', '.join(NOTATIONS)}")
