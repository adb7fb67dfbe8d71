"""
=======================================
One training step, written out by hand
=======================================

:func:`ffnn.explain` writes out one forward pass, backward pass and update of a network in the
notation of one of the five derivations (see :doc:`/user_guide/explain`): every quantity named as
the author names it, every equation with its numbers. Here, Mike Gashler's y_ij, x_ij, w_ijk and
error terms e_ij on a 2-3-2 network with a tanh hidden layer, two samples, his loss ½ Σ (t − y)².
"""

import matplotlib.pyplot as plt
import numpy as np

import ffnn
from ffnn.explanation.paths import path_sum
from ffnn.explanation.text import equation_lines
from ffnn.gradcheck import finite_differences

net = ffnn.Network([2, 3, 2], activation="tanh", output="sigmoid", seed=0)
net.biases[1][...] = [0.1, -0.2, 0.05]
X = np.array([[0.5, -1.0], [0.2, 0.4]])
T = np.array([[1.0, 0.0], [0.0, 1.0]])

step = ffnn.explain(net, X, T, "half_sse", "gashler", learning_rate=0.5)
print(step)

# %%
# The same step in Kristian Wichmann's notation: one sample per column, Δ⁽ˡ⁾ = ∂J/∂A⁽ˡ⁾ and
# H⁽ˡ⁾ = Δ⁽ˡ⁾ ⊙ σ′(Z⁽ˡ⁾). Only its backward pass is printed here.

wichmann = ffnn.explain(net, X, T, "half_sse", "wichmann", learning_rate=0.5)
for s in wichmann.steps:
    if s.phase == "backward":
        print(s.title)
        for eq in s.equations:
            print("\n".join(equation_lines(eq)))

# %%
# Three ways to each gradient
# ---------------------------
#
# The page that ``step.html(net)`` writes (``ffnn explain --notation gashler --html step.html``)
# shows, for the weight you click, its gradient by the error terms above, by Gashler's path sum
# (his step 19, one product per path from the weight to the outputs, no cached error terms) and by
# central finite differences. Here are all twelve weights: the three agree to rounding (the path
# sum and the error terms) and to the finite difference's truncation error (about 1e-11).

fd = finite_differences(net, X, T, "half_sse")
rows = []
for l in (1, 2):
    for k in range(net.sizes[l - 1]):
        for j in range(net.sizes[l]):
            by_terms = step.gradient(l, k, j)
            by_paths = path_sum(step.values, net.sizes, l, k, j).total
            rows.append((f"w{l}{j}{k}", by_terms, by_paths, fd[f"W[{l}]"][k, j]))
            assert abs(by_paths - by_terms) <= 1e-12 * max(1.0, abs(by_terms))
            assert abs(fd[f"W[{l}]"][k, j] - by_terms) <= 1e-8

fig, ax = plt.subplots(figsize=(8, 3.6))
names = [r[0] for r in rows]
x = np.arange(len(rows))
for n, (label, marker) in enumerate((("error terms", "o"), ("path sum", "x"), ("finite differences", "+"))):
    ax.scatter(x, [r[n + 1] for r in rows], marker=marker, s=70, label=label)
ax.set_xticks(x, [f"$w_{{{name[1:]}}}$" for name in names])
ax.axhline(0, color="0.8", lw=0.8)
ax.set_ylabel("∂E/∂w")
ax.set_title("Gashler's gradients of one step, three ways")
ax.legend()
fig.tight_layout()
