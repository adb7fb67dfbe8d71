"""Errors shared by modules that must not import one another (the activations and ``ffnn.network``
raise :class:`ConversionError`, which ``ffnn.export`` re-exports, without importing ``ffnn.export``)."""


class ConversionError(ValueError):
    """A model, layer or activation that the target format (or ffnn) cannot represent; the message names it."""


ConversionError.__module__ = "ffnn.export"  # where users import it from
