"""Gashler's explicit per-weight formula (step 19), written independently of ffnn.

    ∂J/∂w_ijk = Σ_paths ∂J/∂y_L · f_L′(x_L) · w · f′ · … · w_{i+1,·,j} · f_i′(x_ij) · y_{i−1,k}

a sum over every path from weight w_ijk (into layer i, node j, from node k) to the outputs. It is
evaluated literally, by recursion over paths and without caching, so it costs exponential time: use
it on tiny networks only. Scalars and Python's ``math`` only; nothing from ffnn's activations.

Weights follow Gashler: ``w[i][j][k]`` feeds layer i node j from node k of layer i−1 (so it is
ffnn's ``W[i][k, j]``); layers and nodes are numbered from 0 here, with layer 0 the inputs.
"""

import math


def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


# (f, f′) per activation name, written from the textbook definitions.
SCALAR_ACTIVATIONS = {
    "identity": (lambda x: x, lambda x: 1.0),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2),
    "softplus": (lambda x: math.log1p(math.exp(x)), _sigmoid),
    "elu": (lambda x: x if x > 0 else math.exp(x) - 1, lambda x: 1.0 if x > 0 else math.exp(x)),
}

# dJ/dy for one output of one sample, as a function of (y, t, n_samples).
SCALAR_LOSS_GRADIENTS = {
    "half_sse": lambda y, t, n: -(t - y),          # Gashler step 3: −(t − y)
    "sse": lambda y, t, n: -2 * (t - y),           # Xing Chao: 2(o − t)
    "mse": lambda y, t, n: (y - t) / n,            # Wichmann eq. 2.20
}


def forward(w, b, acts, x):
    """Net inputs xs[i][j] and outputs ys[i][j] for one sample, layer by layer (Gashler's x and y)."""
    ys, xs = [list(x)], [None]
    for i in range(1, len(w)):
        f = SCALAR_ACTIVATIONS[acts[i]][0]
        net = [sum(w[i][j][k] * ys[i - 1][k] for k in range(len(ys[i - 1]))) + b[i][j] for j in range(len(w[i]))]
        xs.append(net)
        ys.append([f(v) for v in net])
    return xs, ys


def _paths(i, j, w, acts, xs, ys, dJdy):
    """Σ over every path from node j of layer i to the outputs of the product of w·f′ factors."""
    fprime = SCALAR_ACTIVATIONS[acts[i]][1](xs[i][j])
    L = len(w) - 1
    if i == L:
        return dJdy[j] * fprime
    return sum(_paths(i + 1, m, w, acts, xs, ys, dJdy) * w[i + 1][m][j] for m in range(len(w[i + 1]))) * fprime


def weight_gradient(w, b, acts, X, T, loss, i, j, k):
    """∂J/∂w_ijk by Gashler's step 19, summed over samples."""
    total = 0.0
    for x, t in zip(X, T):
        xs, ys = forward(w, b, acts, x)
        dJdy = [SCALAR_LOSS_GRADIENTS[loss](y, tt, len(X)) for y, tt in zip(ys[-1], t)]
        total += _paths(i, j, w, acts, xs, ys, dJdy) * ys[i - 1][k]
    return total


def bias_gradient(w, b, acts, X, T, loss, i, j):
    """∂J/∂b_ij: the same path sum with y_{i−1,k} replaced by 1."""
    total = 0.0
    for x, t in zip(X, T):
        xs, ys = forward(w, b, acts, x)
        dJdy = [SCALAR_LOSS_GRADIENTS[loss](y, tt, len(X)) for y, tt in zip(ys[-1], t)]
        total += _paths(i, j, w, acts, xs, ys, dJdy)
    return total


def input_gradient(w, b, acts, x, t, loss, n_samples, k):
    """∂J/∂y_0k for one sample: Gashler's second derivation, −Σ_m e_1m w_1mk."""
    xs, ys = forward(w, b, acts, x)
    dJdy = [SCALAR_LOSS_GRADIENTS[loss](y, tt, n_samples) for y, tt in zip(ys[-1], t)]
    return sum(_paths(1, m, w, acts, xs, ys, dJdy) * w[1][m][k] for m in range(len(w[1])))


def from_network(net):
    """Gashler's w[i][j][k] and b[i][j] (index 0 unused) from an ffnn Network's W[i][k, j]."""
    w, b = [None], [None]
    for W, bias in zip(net.weights, net.biases):
        w.append([[float(W[k, j]) for k in range(W.shape[0])] for j in range(W.shape[1])])
        b.append([float(v) for v in bias])
    return w, b
