"""The same network and losses written for independent automatic differentiation packages.

Nothing here imports ffnn's math: the forward pass and every loss are written again, from the
seeds' formulas, in autograd.numpy (and in torch when it is installed), and differentiated by the
package's own reverse mode.
"""

import autograd.numpy as anp
from autograd import grad

GELU_C = (2 / anp.pi) ** 0.5


def _act(name, z, mod):
    if name == "identity":
        return z
    if name == "sigmoid":
        return 1 / (1 + mod.exp(-z))
    if name == "tanh":
        return mod.tanh(z)
    if name == "relu":
        return mod.maximum(z, 0 * z)
    if name == "leaky_relu":
        return mod.where(z > 0, z, 0.01 * z)
    if name == "elu":
        return mod.where(z > 0, z, mod.exp(mod.minimum(z, 0 * z)) - 1)
    if name == "softplus":
        return mod.log(1 + mod.exp(z))
    if name == "gelu":
        return 0.5 * z * (1 + mod.tanh(GELU_C * (z + 0.044715 * z ** 3)))
    if name == "softmax":
        e = mod.exp(z - mod.max(z, axis=1, keepdims=True)) if mod is anp else mod.exp(z - z.max(dim=1, keepdim=True).values)
        return e / mod.sum(e, axis=1, keepdims=True) if mod is anp else e / e.sum(dim=1, keepdim=True)
    raise KeyError(name)


def _loss(name, A, T, mod):
    N = A.shape[0]
    if name == "half_sse":
        return 0.5 * mod.sum((T - A) ** 2)
    if name == "sse":
        return mod.sum((T - A) ** 2)
    if name == "mse":
        return mod.sum((A - T) ** 2) / (2 * N)
    if name == "cross_entropy":
        return -mod.sum(T * mod.log(A)) / N
    if name == "binary_cross_entropy":
        return -mod.sum(T * mod.log(A) + (1 - T) * mod.log(1 - A)) / N
    raise KeyError(name)


def autograd_gradients(Ws, bs, acts, loss, X, T):
    """(J, [dW...], [db...], dX) by autograd's reverse mode; Ws[l] is (n_in, n_out), batch-first."""

    def J(params, X):
        Ws, bs = params
        a = X
        for W, b, act in zip(Ws, bs, acts):
            a = _act(act, anp.dot(a, W) + b, anp)
        return _loss(loss, a, T, anp)

    params = (list(Ws), list(bs))
    dparams = grad(J, 0)(params, X)
    dX = grad(J, 1)(params, X)
    return J(params, X), dparams[0], dparams[1], dX


def torch_gradients(Ws, bs, acts, loss, X, T):
    """The same with PyTorch's autograd in float64."""
    import torch

    Wt = [torch.tensor(W, dtype=torch.float64, requires_grad=True) for W in Ws]
    bt = [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in bs]
    Xt = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    Tt = torch.tensor(T, dtype=torch.float64)
    a = Xt
    for W, b, act in zip(Wt, bt, acts):
        a = _act(act, a @ W + b, torch)
    Jt = _loss(loss, a, Tt, torch)
    Jt.backward()
    return float(Jt.detach()), [W.grad.numpy() for W in Wt], [b.grad.numpy() for b in bt], Xt.grad.numpy()
