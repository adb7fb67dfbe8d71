"""Containers indexed like the math: ``W[1]`` is the first layer's weights, ``W[L]`` the output's."""

from __future__ import annotations

__all__ = ["LayerList"]


class LayerList:
    """A sequence of per-layer arrays indexed 1..L, as in the derivations (layer 0 is the input).

    ``items[l]`` for l in 1..L, negative indices from the end (``[-1]`` is layer L), ``len()`` is L and
    iteration yields layers 1..L in order. Assigning ``items[l] = array`` checks the shape (and
    keeps the dtype) so a network can never be left inconsistent.
    """

    __slots__ = ("_items", "_what", "_frozen_shapes")

    def __init__(self, items, what="layer", check_shapes=False):
        self._items = list(items)
        self._what = what
        self._frozen_shapes = check_shapes

    def _index(self, l):
        if not isinstance(l, int):
            raise TypeError(f"{self._what} index must be an int, got {type(l).__name__}")
        L = len(self._items)
        if 1 <= l <= L:
            return l - 1
        if -L <= l <= -1:
            return L + l
        if l == 0:
            raise IndexError(f"{self._what}[0] does not exist: layer 0 is the input; layers are numbered 1..{L}")
        raise IndexError(f"{self._what}[{l}] is out of range: layers are numbered 1..{L}")

    def __getitem__(self, l):
        return self._items[self._index(l)]

    def __setitem__(self, l, value):
        i = self._index(l)
        old = self._items[i]
        if self._frozen_shapes:
            if tuple(getattr(value, "shape", ())) != tuple(old.shape):
                raise ValueError(f"{self._what}[{l}] must have shape {tuple(old.shape)}, "
                                 f"got {tuple(getattr(value, 'shape', ()))}")
            if getattr(value, "dtype", None) != old.dtype:
                raise TypeError(f"{self._what}[{l}] must have dtype {old.dtype}, got {getattr(value, 'dtype', None)}")
        self._items[i] = value

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def items(self):
        """Pairs (l, array) for l = 1..L."""
        return list(enumerate(self._items, start=1))

    def by_layer(self):
        """A plain Python list indexed by layer: ``[None, a1, …, aL]`` (for loops over l = 1..L)."""
        return [None, *self._items]

    def to_list(self):
        """A plain Python list, 0-based (``[W1, …, WL]``)."""
        return list(self._items)

    def __repr__(self):
        shapes = ", ".join(f"{l}: {tuple(x.shape)}" for l, x in self.items())
        return f"{self._what}{{{shapes}}}"
