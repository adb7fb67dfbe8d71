r"""
=====================================
Five derivations, one implementation
=====================================

ffnn implements back-propagation exactly as five short derivations write it (see
:doc:`/references`). Each author has a notation of their own; this page maps each one to ffnn's,
computes each author's hand-worked result *in the author's own notation*, with scalar Python and nothing
from ffnn, and puts it beside what ffnn's public API returns: ``Network``, ``weights[l]``,
``biases[l]``, ``forward``, ``backward`` and ``loss_and_gradients``.

ffnn's notation is batch-first, one sample per row (see :ref:`notation`):

.. math::

    z^{[l]} = a^{[l-1]} W^{[l]} + b^{[l]}, \qquad a^{[l]} = \sigma_l(z^{[l]}), \qquad a^{[0]} = X,

    \delta^{[l]} = \frac{\partial J}{\partial z^{[l]}}, \qquad
    \frac{\partial J}{\partial W^{[l]}} = a^{[l-1]\top} \delta^{[l]}

Every number is printed with 17 significant digits, enough to tell any two doubles apart. The
last column is the difference between the two, relative to their size, in units of
:math:`\epsilon = 2.2 \times 10^{-16}` (the spacing of doubles near 1): 0 is the same double, and a few ε is the rounding
of a sum added in a different order — the authors' formulas add term by term, ffnn multiplies
matrices. A difference above 50 ε stops the documentation build.
"""

import math

import matplotlib.pyplot as plt
import numpy as np

import ffnn


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


EPS = np.finfo(np.float64).eps   # 2.2e-16, the spacing of doubles just above 1
rows = []  # (author, quantity, by hand, by ffnn, difference in ε) for the summary at the end


def compare(author, quantity, by_hand, by_ffnn, scale=None):
    """Print both values and their difference relative to ``scale`` (default: the values' size),
    in units of ε; stop the build when they are more than 50 ε apart."""
    a, b = float(by_hand), float(by_ffnn)
    scale = max(abs(a), abs(b)) if scale is None else float(scale)
    d = abs(a - b) / scale / EPS if scale else 0.0
    rows.append((author, quantity, a, b, d))
    print(f"{quantity:<30} {a:>24.17g} {b:>24.17g} {d:>6.1f}")
    assert d <= 50, f"{author}: {quantity} differs by {d:.0f} ε"


def header(author):
    print(f"\n{author}\n{'quantity':<30} {'their formula':>24} {'ffnn':>24} {'Δ / ε':>6}")


# %%
# Mike Gashler: the path sum for w₁₇₃
# ------------------------------------
#
# Mike Gashler, *A thorough derivation of back-propagation* (2010), takes a five-layer sigmoid
# network and differentiates ½ Σᵢ (tᵢ − y₅ᵢ)² with respect to w₁₇₃, the weight into layer 1,
# node 7, from input node 3. His step 19 is a sum over every path from that weight to the outputs:
#
# .. code-block:: text
#
#    ∂E/∂w₁₇₃ = −Σᵢ (tᵢ − y₅ᵢ) f₅′(x₅ᵢ) Σⱼ w₅ᵢⱼ f₄′(x₄ⱼ) Σₖ w₄ⱼₖ f₃′(x₃ₖ)
#                   · Σₗ w₃ₖₗ f₂′(x₂ₗ) w₂ₗ₇ f₁′(x₁₇) y₀₃
#
# and steps 20–24 cache the error terms e_ij to turn it into −e₁₇ y₀₃.
#
# ==============================================  ============================================
# Gashler                                         ffnn
# ==============================================  ============================================
# y_ij, the output of layer i, node j             ``a[i][:, j]``
# x_ij, its net input                             ``z[i][:, j]``
# w_ijk, into layer i, node j, from node k        ``W[i][k, j]`` (a row per input unit)
# ½ Σ (t − y)²                                    loss ``"half_sse"``
# error term e_ij, (t − y) f′ at the output       ``-delta[i][:, j]`` (his e is −∂E/∂x)
# no biases                                       ``b[l]``, which start at zero
# ==============================================  ============================================
#
# His network's widths are not fixed by the text beyond "node 7" and "input 5" (his second
# derivation, the gradient with respect to an input); we take 6 inputs and layers of 8, 6, 5, 3
# and 2 units.

net = ffnn.Network([6, 8, 6, 5, 3, 2], activation="sigmoid", output="sigmoid", seed=0)
rng = np.random.default_rng(0)
x0 = rng.normal(size=6)          # one pattern, y_0j
t = rng.uniform(size=2)          # its targets

# Gashler's quantities, in his notation, with Python floats.
w = [None] + [[[float(net.weights[i][k, j]) for k in range(net.sizes[i - 1])]
               for j in range(net.sizes[i])] for i in range(1, 6)]          # w[i][j][k]
y = [list(map(float, x0))]
x = [None]
for i in range(1, 6):
    x.append([sum(w[i][j][k] * y[i - 1][k] for k in range(len(y[i - 1]))) for j in range(len(w[i]))])
    y.append([sigmoid(v) for v in x[i]])


def fp(i, j):
    """f_i'(x_ij) for the sigmoid: f(1 − f)."""
    return y[i][j] * (1 - y[i][j])


# Step 19, literally: one term per path 7 → l → k → j → i.
path_sum = -sum(
    (t[i] - y[5][i]) * fp(5, i) * w[5][i][j] * fp(4, j) * w[4][j][k] * fp(3, k) * w[3][k][l] * fp(2, l)
    * w[2][l][7] * fp(1, 7) * y[0][3]
    for i in range(2) for j in range(3) for k in range(5) for l in range(6))
n_paths = 2 * 3 * 5 * 6

# Steps 20–24: the cached error terms.
e = {5: [(t[i] - y[5][i]) * fp(5, i) for i in range(2)]}
for layer in (4, 3, 2, 1):
    e[layer] = [sum(e[layer + 1][m] * w[layer + 1][m][j] for m in range(len(e[layer + 1]))) * fp(layer, j)
                for j in range(len(y[layer]))]
step24 = -e[1][7] * y[0][3]
# His second derivation: the gradient with respect to input 5 is −Σ_m e_1m w_1m5.
input_5 = -sum(e[1][m] * w[1][m][5] for m in range(8))

# ffnn: one forward and one backward pass.
J, grads = net.loss_and_gradients(x0[None, :], t[None, :], "half_sse")

header("Gashler")
compare("Gashler", f"step 19 ({n_paths} paths)", path_sum, grads.weights[1][3, 7])
compare("Gashler", "step 24: -e_17 y_03", step24, grads.weights[1][3, 7])
compare("Gashler", "e_17 = -delta[1][0, 7]", e[1][7], -grads.deltas[1][0, 7])
compare("Gashler", "dE/dy_05 = -sum e_1m w_1m5", input_5, grads.inputs[0, 5])
gap = abs(path_sum - step24) / abs(step24) / EPS
print(f"(his own step 19 and step 24 differ from each other by {gap:.1f} ε)")

# %%
# The figure draws his network and the 180 paths that step 19 sums over; back-propagation visits
# each edge once instead.

fig, ax = plt.subplots(figsize=(8, 4.2))
xs = range(6)
pos = {(i, j): (i, (net.sizes[i] - 1) / 2 - j) for i in xs for j in range(net.sizes[i])}
on_path = {(0, 3), (1, 7)} | {(i, j) for i in (2, 3, 4, 5) for j in range(net.sizes[i])}
for i in range(1, 6):
    for j in range(net.sizes[i]):
        for k in range(net.sizes[i - 1]):
            used = (i - 1, k) in on_path and (i, j) in on_path and (i != 1 or (k, j) == (3, 7))
            (x1, y1), (x2, y2) = pos[(i - 1, k)], pos[(i, j)]
            ax.plot([x1, x2], [y1, y2], color="C3" if used else "0.85", lw=1.6 if used else 0.6,
                    zorder=2 if used else 1)
for (i, j), (px, py) in pos.items():
    ax.scatter(px, py, s=140, color="C3" if (i, j) in on_path else "white", edgecolor="k", zorder=3)
ax.annotate("$w_{173}$", xy=(0.5, (pos[(0, 3)][1] + pos[(1, 7)][1]) / 2), xytext=(-0.05, -3.4),
            arrowprops=dict(arrowstyle="->"), fontsize=12)
ax.set_xticks(list(xs), ["input\n(layer 0)"] + [f"layer {i}" for i in range(1, 6)])
ax.set_yticks([])
ax.set_frame_on(False)
ax.set_title(f"Gashler's step 19 sums {n_paths} paths from $w_{{173}}$ to the outputs")
fig.tight_layout()

# %%
# Andriy Sheptunov: the output δ
# ------------------------------
#
# Andriy Sheptunov's notes on back-propagation use the sigmoid φ, the loss Σ ½(y − ŷ)², a weight
# w_nm from input neuron n to output neuron m, and arrive at
#
# .. code-block:: text
#
#    ∂E/∂w_ij = δ_j o_i,   δ_j = (o_j − t_j) o_j (1 − o_j)          for an output neuron,
#                          δ_j = (Σ_ℓ w_jℓ δ_ℓ) o_j (1 − o_j)        for an inner neuron.
#
# ===================================  =================================
# Sheptunov                            ffnn
# ===================================  =================================
# w_nm, from n onto m                  ``W[l][n, m]`` (the same layout)
# o_j, neuron outputs                  ``a[l][:, j]``
# δ_j                                  ``delta[l][:, j]``
# Σ ½(y − ŷ)²                          loss ``"half_sse"``
# ===================================  =================================

net = ffnn.Network([3, 4, 2], activation="sigmoid", output="sigmoid", seed=4)
x0 = np.array([0.35, -1.2, 0.8])
t = np.array([1.0, 0.0])
trace = net.forward(x0[None, :])
grads = net.backward(trace, t[None, :], "half_sse")

W1 = [[float(v) for v in row] for row in net.weights[1]]    # w_ij, input i -> hidden j
W2 = [[float(v) for v in row] for row in net.weights[2]]    # w_jl, hidden j -> output l
o_in = list(map(float, x0))
o_hid = [sigmoid(sum(W1[i][j] * o_in[i] for i in range(3))) for j in range(4)]
o_out = [sigmoid(sum(W2[j][m] * o_hid[j] for j in range(4))) for m in range(2)]
delta_out = [(o_out[j] - t[j]) * o_out[j] * (1 - o_out[j]) for j in range(2)]
delta_hid = [sum(W2[j][l] * delta_out[l] for l in range(2)) * o_hid[j] * (1 - o_hid[j]) for j in range(4)]

header("Sheptunov")
for j in range(2):
    compare("Sheptunov", f"output delta_{j}", delta_out[j], grads.deltas[2][0, j])
for j in range(4):
    compare("Sheptunov", f"inner delta_{j}", delta_hid[j], grads.deltas[1][0, j])
compare("Sheptunov", "dE/dw_21 = delta_1 o_2", delta_out[1] * o_hid[2], grads.weights[2][2, 1])
compare("Sheptunov", "dE/dw_03 = delta_3 o_0", delta_hid[3] * o_in[0], grads.weights[1][0, 3])
# his §2.1 form for a weight into the output layer: −(y − ŷ) ŷ (1 − ŷ) x
compare("Sheptunov", "§2.1: -(y-ŷ)ŷ(1-ŷ)x", -(t[0] - o_out[0]) * o_out[0] * (1 - o_out[0]) * o_hid[1],
        grads.weights[2][1, 0])

# %%
# Xing Chao: the single-layer update
# ----------------------------------
#
# Xing Chao, *Back Propagation Explanation* (2016), starts from one unit,
#
# .. code-block:: text
#
#    o = f(wx − b),   e = (t − o)²,   Δw = −η de/dw = −2η (o − t) f′ x,
#
# then chains two layers, ∂e/∂w⁽¹⁾ = 2(o⁽²⁾ − t) f₂′ w⁽²⁾ f₁′ x, and writes the matrix form
# O⁽ⁱ⁾ = F_i(W⁽ⁱ⁾ O⁽ⁱ⁻¹⁾) with one column per layer.
#
# ======================================  ========================================
# Xing Chao                               ffnn
# ======================================  ========================================
# W⁽ⁱ⁾, acting on columns                 ``W[i].T``
# threshold b in f(wx − b)                bias ``b = -b_theirs``
# e = (t − o)², no ½                      loss ``"sse"``
# Δw = −η de/dw                           one step of ``ffnn.SGD(eta)``
# ======================================  ========================================
#
# The update is the one ``ffnn.train`` makes: one epoch of plain SGD on the one sample.

w_, b_, x_, t_, eta = 0.7, 0.2, 1.3, 0.1, 0.5
o = sigmoid(w_ * x_ - b_)
delta_w = -2 * eta * (o - t_) * o * (1 - o) * x_

net = ffnn.Network([1, 1], output="sigmoid", seed=0)
net.weights[1][...] = w_
net.biases[1][...] = -b_
_, g = net.loss_and_gradients([[x_]], [[t_]], "sse")
header("Xing Chao")
compare("Xing Chao", "de/dw = 2(o - t)f'x", 2 * (o - t_) * o * (1 - o) * x_, g.weights[1][0, 0])
ffnn.train(net, [[x_]], [[t_]], loss="sse", optimizer=ffnn.SGD(eta), epochs=1, batch_size=1, shuffle=False)
compare("Xing Chao", "Δw = -2η(o - t)f'x", delta_w, float(net.weights[1][0, 0]) - w_)

# Double layers: o1 = f1(w1 x − b1), o2 = f2(w2 o1 − b2), with f1 = tanh and f2 the sigmoid.
w1, b1, w2, b2 = -0.4, 0.3, 1.1, -0.2
o1 = math.tanh(w1 * x_ - b1)
o2 = sigmoid(w2 * o1 - b2)
de_dw1 = 2 * (o2 - t_) * o2 * (1 - o2) * w2 * (1 - o1 ** 2) * x_
net2 = ffnn.Network([1, 1, 1], activation="tanh", output="sigmoid", seed=0)
net2.weights[1][...], net2.biases[1][...] = w1, -b1
net2.weights[2][...], net2.biases[2][...] = w2, -b2
_, g2 = net2.loss_and_gradients([[x_]], [[t_]], "sse")
compare("Xing Chao", "de/dw1 = 2(o2-t)f2'w2 f1'x", de_dw1, g2.weights[1][0, 0])

# %%
# Mladen Kolar and Rob McCulloch: the 1-2-1 network
# -------------------------------------------------
#
# Mladen Kolar and Rob McCulloch, *Back Propagation*, number the layers from ℓ = 1 (the input x)
# and work "the simplest interesting case" by hand: one input, two hidden units with activation
# g, one numeric output with g^L the identity, and L = (y − f)²:
#
# .. code-block:: text
#
#    δ₁⁽³⁾ = −2(y − f) (g^L)′(Z₁⁽³⁾),     ∂L/∂w₁ⱼ⁽²⁾ = δ₁⁽³⁾ aⱼ⁽²⁾,     ∂L/∂b₁⁽²⁾ = δ₁⁽³⁾,
#    δ₂⁽²⁾ = δ₁⁽³⁾ w₁₂⁽²⁾ g′(Z₂⁽²⁾),       ∂L/∂w₂₁⁽¹⁾ = δ₂⁽²⁾ a₁⁽¹⁾,     ∂L/∂b₂⁽¹⁾ = δ₂⁽²⁾.
#
# ==============================================  =======================================
# Kolar and McCulloch                             ffnn
# ==============================================  =======================================
# layer ℓ, with ℓ = 1 the input                   layer ℓ − 1, with 0 the input
# W⁽ℓ⁾, p_{ℓ+1} × p_ℓ, feeds layer ℓ + 1          ``W[ℓ].T``
# b⁽ℓ⁾, feeds layer ℓ + 1                         ``b[ℓ]``
# Z⁽ℓ⁾, a⁽ℓ⁾, δ⁽ℓ⁾ = ∂L/∂Z⁽ℓ⁾                      ``z[ℓ-1]``, ``a[ℓ-1]``, ``delta[ℓ-1]``
# L = (y − f)², g^L the identity                  loss ``"sse"``, output ``"identity"``
# ==============================================  =======================================

w11_1, w21_1, b1_1, b2_1 = 0.4, -0.7, 0.1, 0.2        # input -> hidden: w^(1), b^(1)
w11_2, w12_2, b1_2 = 0.3, -0.5, 0.05                  # hidden -> output: w^(2), b^(2)
xk, yk = 1.5, 0.8
g, gprime = math.tanh, (lambda z: 1 - math.tanh(z) ** 2)

Z1_2, Z2_2 = b1_1 + w11_1 * xk, b2_1 + w21_1 * xk
a1_2, a2_2 = g(Z1_2), g(Z2_2)
f = b1_2 + w11_2 * a1_2 + w12_2 * a2_2
d1_3 = -2 * (yk - f) * 1.0
d1_2 = d1_3 * w11_2 * gprime(Z1_2)
d2_2 = d1_3 * w12_2 * gprime(Z2_2)

net = ffnn.Network([1, 2, 1], activation="tanh", output="identity", seed=0)
net.weights[1][...] = [[w11_1, w21_1]]     # their W^(1) is 2 x 1; ours is its transpose
net.biases[1][...] = [b1_1, b2_1]
net.weights[2][...] = [[w11_2], [w12_2]]   # their W^(2) is 1 x 2
net.biases[2][...] = [b1_2]
L_, grads = net.loss_and_gradients([[xk]], [[yk]], "sse")

header("Kolar and McCulloch")
compare("Kolar and McCulloch", "L = (y - f)^2", (yk - f) ** 2, L_)
compare("Kolar and McCulloch", "delta_1^(3)", d1_3, grads.deltas[2][0, 0])
compare("Kolar and McCulloch", "dL/dw_11^(2) = δ a_1^(2)", d1_3 * a1_2, grads.weights[2][0, 0])
compare("Kolar and McCulloch", "dL/dw_12^(2) = δ a_2^(2)", d1_3 * a2_2, grads.weights[2][1, 0])
compare("Kolar and McCulloch", "dL/db_1^(2) = δ_1^(3)", d1_3, grads.biases[2][0])
compare("Kolar and McCulloch", "delta_1^(2)", d1_2, grads.deltas[1][0, 0])
compare("Kolar and McCulloch", "delta_2^(2)", d2_2, grads.deltas[1][0, 1])
compare("Kolar and McCulloch", "dL/dw_21^(1) = δ_2^(2) x", d2_2 * xk, grads.weights[1][0, 1])
compare("Kolar and McCulloch", "dL/db_2^(1) = δ_2^(2)", d2_2, grads.biases[1][1])

# %%
# Kristian Wichmann: the batched matrix form
# ------------------------------------------
#
# Kristian Wichmann, *General feed forward neural networks* (2017), keeps the whole batch in
# matrices with one *column* per sample, X of shape S₀ × N, and derives
#
# .. code-block:: text
#
#    Δ⁽ᴸ⁾ = (A⁽ᴸ⁾ − T) / N                   H⁽ˡ⁾ = Δ⁽ˡ⁾ ⊙ σ_l′(Z⁽ˡ⁾)      Δ⁽ˡ⁻¹⁾ = (W⁽ˡ⁾)ᵗ H⁽ˡ⁾
#    ∂J/∂W⁽ˡ⁾ = H⁽ˡ⁾ (A⁽ˡ⁻¹⁾)ᵗ                 ∂J/∂b⁽ˡ⁾ = H⁽ˡ⁾ J_N
#
# for J = 1/(2N) Σₘ ‖aₘ − tₘ‖². ffnn's core is this form, transposed to one sample per row.
#
# ========================================  ==========================================
# Wichmann                                  ffnn
# ========================================  ==========================================
# X, A⁽ˡ⁾, Z⁽ˡ⁾, T: S_l × N (by columns)     ``X``, ``a[l]``, ``z[l]``, ``T``: (N, S_l) (by rows)
# W⁽ˡ⁾: S_l × S_{l−1}                        ``W[l].T``
# H⁽ˡ⁾ = Δ⁽ˡ⁾ ⊙ σ′(Z⁽ˡ⁾)                       ``delta[l].T``
# J_N, a column of N ones                   ``.sum(axis=0)``
# J = 1/(2N) Σ ‖a − t‖²                     loss ``"mse"``
# ========================================  ==========================================
#
# His formulas, in his layout, with NumPy only (each layer its own σ_l: tanh, softplus, sigmoid):

net = ffnn.Network([3, 5, 4, 2], activation=["tanh", "softplus"], output="sigmoid", seed=3)
rng = np.random.default_rng(3)
N = 6
X_his = rng.normal(size=(3, N))                  # S_0 x N: one column per sample
T_his = rng.uniform(size=(2, N))
sig = [None, np.tanh, lambda z: np.log1p(np.exp(z)), lambda z: 1 / (1 + np.exp(-z))]
dsig = [None, lambda z: 1 - np.tanh(z) ** 2, lambda z: 1 / (1 + np.exp(-z)),
        lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2]
Wh = [None] + [np.array(net.weights[l]).T for l in (1, 2, 3)]   # his W^(l), S_l x S_{l-1}
bh = [None] + [np.array(net.biases[l])[:, None] for l in (1, 2, 3)]
A, Z = [X_his], [None]
for l in (1, 2, 3):
    Z.append(Wh[l] @ A[l - 1] + bh[l])              # eq. 1.4
    A.append(sig[l](Z[l]))
Delta = (A[3] - T_his) / N                          # eq. 2.21
H, dW, db = {}, {}, {}
for l in (3, 2, 1):
    H[l] = Delta * dsig[l](Z[l])                     # eq. 2.13 / 2.34
    dW[l] = H[l] @ A[l - 1].T                        # eq. 2.7 / 2.33
    db[l] = H[l] @ np.ones((N, 1))                   # eq. 2.11 / 2.37
    Delta = Wh[l].T @ H[l]                           # eq. 2.32
J_his = np.sum((A[3] - T_his) ** 2) / (2 * N)        # eq. 2.16

J, grads = net.loss_and_gradients(X_his.T, T_his.T, "mse")
header("Wichmann")
compare("Wichmann", "J (eq. 2.16)", J_his, J)
for l in (3, 2, 1):
    # Whole matrices: the largest entry is printed, the difference is the largest over all entries,
    # relative to the matrix's largest entry.
    for name, mine, theirs in ((f"dJ/dW^({l}) = H A^t", dW[l], np.asarray(grads.weights[l]).T),
                               (f"dJ/db^({l}) = H J_N", db[l][:, 0], np.asarray(grads.biases[l])),
                               (f"H^({l}) = Δ ⊙ σ'(Z)", H[l], np.asarray(grads.deltas[l]).T)):
        k = np.unravel_index(np.argmax(np.abs(mine)), mine.shape)
        scale = np.max(np.abs(mine))
        worst = np.unravel_index(np.argmax(np.abs(mine - theirs)), mine.shape)
        compare("Wichmann", name, mine[worst], theirs[worst], scale)

# %%
# All five, side by side
# ----------------------
#
# Every quantity above, by author: the difference between the author's formula and ffnn, in ε.
# Gashler's gradients are sums of many products, and his own two forms of the same gradient (the
# path sum and the cached error terms) differ from each other by the same order as either differs
# from ffnn.

authors = ["Gashler", "Sheptunov", "Xing Chao", "Kolar and McCulloch", "Wichmann"]
fig, ax = plt.subplots(figsize=(8, 3.6))
for n, author in enumerate(authors):
    d = [r[4] for r in rows if r[0] == author]
    ax.scatter(np.full(len(d), n) + np.linspace(-0.25, 0.25, len(d)), d, s=30, color=f"C{n}")
ax.set_xticks(range(len(authors)), authors)
ax.set_ylabel("|formula − ffnn| / size, in ε")
ax.set_ylim(-1, max(5, max(r[4] for r in rows)) * 1.15)
ax.set_title(f"{len(rows)} hand-worked quantities, reproduced by ffnn")
ax.grid(axis="y", alpha=0.4)
fig.tight_layout()

print(f"{len(rows)} quantities: {sum(r[4] == 0 for r in rows)} identical to the last bit, "
      f"the largest difference {max(r[4] for r in rows):.1f} ε")
