"""Models leave and enter ffnn.

- :func:`export_onnx` (onnx.py): an ONNX graph, verified in onnxruntime by the tests;
  :func:`register_skl2onnx` lets skl2onnx convert ffnn's estimators inside a Pipeline.
- :func:`export_c` (c.py): one dependency-free C99 header with constant weights and a predict function.
- :func:`quantize_int8`, :func:`export_c_int8`, :func:`export_onnx_qdq` (int8.py): int8 weights and
  activations calibrated on data; a C99 header in integer arithmetic only (``<stdint.h>``), or an ONNX
  QDQ model.
- :func:`from_sklearn`, :func:`to_sklearn` (sklearn_bridge.py): scikit-learn's fitted MLPs to and from
  ffnn networks and estimators.
- :func:`from_torch`, :func:`to_torch` (torch_bridge.py): ``nn.Sequential`` of ``nn.Linear`` layers and
  activations to and from ffnn networks (``Network.to_torch`` calls :func:`to_torch`).

The modules import onnx, scikit-learn or torch only when a function runs, so importing this package
(or ``ffnn``) stays light. Whatever a format cannot represent raises :class:`ConversionError` naming it.
"""

from importlib import import_module

from ._model import ConversionError

__all__ = ["export_onnx", "register_skl2onnx", "export_c", "quantize_int8", "export_c_int8", "export_onnx_qdq",
           "Int8Model", "from_sklearn", "to_sklearn", "from_torch", "to_torch", "ConversionError"]

_WHERE = {"export_onnx": "onnx", "register_skl2onnx": "onnx", "export_c": "c", "from_sklearn": "sklearn_bridge",
          "to_sklearn": "sklearn_bridge", "from_torch": "torch_bridge", "to_torch": "torch_bridge",
          "quantize_int8": "int8", "export_c_int8": "int8", "export_onnx_qdq": "int8", "Int8Model": "int8"}


def __getattr__(name):
    if name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
