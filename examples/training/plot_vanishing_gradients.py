r"""
==========================================
Vanishing gradients: sigmoid, tanh, relu
==========================================

Back-propagation multiplies the error term by :math:`\sigma_l'(z^{[l]})` once per layer on its way back:

.. math::

    \delta^{[l]} = \left(\delta^{[l+1]} W^{[l+1]\top}\right) \odot \sigma_l'(z^{[l]}), \qquad
    \frac{\partial J}{\partial W^{[l]}} = a^{[l-1]\top} \delta^{[l]}

The sigmoid's derivative is at most 1/4, so in a deep sigmoid network :math:`\delta` — and with it
:math:`\partial J / \partial W^{[l]}` — shrinks by a factor of four or more per layer from the output
to the input: the first layers barely move and the network stops learning. tanh
(:math:`\sigma' \le 1`, equal to 1 at 0) and relu (:math:`\sigma' = 1` wherever a unit is active)
pass the error back nearly undiminished.

This example trains the same nine-layer network (64 inputs, eight hidden layers of 32 units, a
softmax output) on handwritten digits with each hidden activation, and records the gradient flow,
the norm :math:`\lVert \partial J / \partial W^{[l]} \rVert` of every layer, after every epoch. It needs nothing but the public API: a
callback ``cb(net, history)``, which :func:`ffnn.train` calls after each epoch, runs
``net.loss_and_gradients`` on the training data.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

import ffnn

X, y = load_digits(return_X_y=True)
X, y = X[:500] / 16.0, y[:500]          # 500 digits, 8 × 8 pixels scaled to [0, 1]
T = np.eye(10)[y]                        # one-hot targets
sizes = [64] + [32] * 8 + [10]
epochs = 25

flow, curves = {}, {}
for activation in ("sigmoid", "tanh", "relu"):
    net = ffnn.Network(sizes, activation=activation, output="softmax", seed=0)
    norms = []

    def record(net, history):
        """‖∂J/∂W[l]‖ for l = 1..L on the whole training set."""
        _, grads = net.loss_and_gradients(X, T, "cross_entropy", input_gradient=False)
        norms.append([float(np.linalg.norm(grads.weights[l])) for l in range(1, net.n_layers + 1)])

    record(net, None)                                   # before the first step
    history = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=epochs,
                         batch_size=32, seed=0, callbacks=[record])
    flow[activation], curves[activation] = np.array(norms), history.loss
    accuracy = np.mean(net.predict(X).argmax(axis=1) == y)
    print(f"{activation:>8}: loss {history.loss[0]:.3f} -> {history.loss[-1]:.3f}, "
          f"training accuracy {accuracy:.2f}; ‖∂J/∂W[1]‖ / ‖∂J/∂W[L]‖ = "
          f"{flow[activation][0, 0] / flow[activation][0, -1]:.1e} at the start")

# %%
# Gradient flow at the start of training
# --------------------------------------
#
# With the network freshly initialised (Glorot for sigmoid and tanh, He for relu), the norm of
# each layer's gradient, from the first hidden layer (l = 1) to the output (l = L = 9). For the
# sigmoid each layer towards the input gets roughly a quarter of the gradient of the layer above:
# five orders of magnitude over nine layers.

L = len(sizes) - 1
fig, ax = plt.subplots(figsize=(7, 4))
for activation, norms in flow.items():
    ax.semilogy(range(1, L + 1), norms[0], "o-", label=activation)
ax.set_xlabel("layer l (1 = first hidden layer, 9 = output)")
ax.set_ylabel("‖∂J/∂W[l]‖ (log scale)")
ax.set_title("Gradient flow before training")
ax.set_xticks(range(1, L + 1))
ax.legend()
ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()

# %%
# Gradient flow during training
# -----------------------------
#
# Every layer's ‖∂J/∂W[l]‖ after each epoch, one line per layer (dark: near the input, light:
# near the output). The sigmoid network's lines stay spread over five orders of magnitude, and
# its loss stays at log 10 ≈ 2.30, the loss of guessing; tanh and relu bring every layer's
# gradient down together as the loss falls.

fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
axes = axes.ravel()
colors = plt.cm.viridis(np.linspace(0, 0.9, L))
for ax, (activation, norms) in zip(axes, flow.items()):
    for l in range(L):
        ax.semilogy(range(epochs + 1), norms[:, l], color=colors[l], label=f"l = {l + 1}")
    ax.set_title(activation)
    ax.set_xlabel("epoch")
    ax.set_ylim(1e-6, 10)
    ax.grid(True, which="major", alpha=0.3)
axes[0].set_ylabel("‖∂J/∂W[l]‖ (log scale)")
axes[2].set_ylabel("‖∂J/∂W[l]‖ (log scale)")
axes[2].legend(fontsize=8, ncol=3, loc="lower left")
for activation, loss in curves.items():
    axes[3].plot(range(1, epochs + 1), loss, label=activation)
axes[3].axhline(np.log(10), color="0.5", ls=":", label="log 10")
axes[3].set_title("training loss")
axes[3].set_xlabel("epoch")
axes[3].legend(fontsize=8)
fig.tight_layout()

# %%
# What to do about it
# -------------------
#
# Use tanh or a member of the relu family in the hidden layers of deep networks (``relu``,
# ``leaky_relu``, ``elu``, ``gelu``; ``init="auto"`` then draws He-scaled weights), keep the
# sigmoid for the output of binary and multilabel problems, or keep sigmoid networks shallow.
#
# :func:`ffnn.train` also records gradient flow as it trains, from each epoch's last minibatch
# rather than the whole training set: ``history.grad_norm`` (‖∂J/∂W[l]‖), ``history.delta_mean``
# (the mean ``|δ[l]|``), ``history.update_ratio`` (‖ΔW[l]‖/‖W[l]‖) and ``history.dead_fraction``
# (relu units that never activated); ``history.plot()`` draws them beside the loss curves.

# The claims above, checked when the documentation is built:
assert curves["sigmoid"][-1] > 2.0 and max(curves["tanh"][-1], curves["relu"][-1]) < 0.5
assert flow["sigmoid"][0, 0] / flow["sigmoid"][0, -1] < 1e-3
assert all(flow[a][0, 0] / flow[a][0, -1] > 0.1 for a in ("tanh", "relu"))
