"""int8 export against the float model, on held-out data: digits and breast_cancer (scikit-learn's bundled
sets), each with a relu and a tanh network, as model files with standard input scaling.

    python benchmarks/int8_export.py [--json benchmarks/results/int8_export_DATE.json]

For each network it reports the held-out accuracy of

- the float model (ffnn, float64) and its float32 C header (``ffnn.export_c``, compiled with gcc),
- the int8 C header (``ffnn.export.export_c_int8``), per-tensor and per-channel weight scales,
  calibrated on the training rows: compiled with gcc, raw features quantized by the header's own
  ``<name>_quantize_input`` and labelled by ``<name>_predict_label``,
- the int8 QDQ ONNX model (``ffnn.export.export_onnx_qdq``) run by onnxruntime,

the share of held-out labels the int8 models give as the float model does, whether the compiled
header's labels equal the Python Int8Model's (they must: the same integer arithmetic), and the sizes:
the header's text, and the object gcc -Os makes of it (code and constants, ``size``'s total).
Not a timing benchmark.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

import ffnn
from ffnn.data import Scaler
from ffnn.export import export_c_int8, export_onnx_qdq, quantize_int8

GCC = shutil.which("gcc")
FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]

SETS = {"digits": load_digits, "breast_cancer": load_breast_cancer}
NETWORKS = {"relu": ([64], "relu"), "tanh": ([32, 16], "tanh")}


def train_model(name, hidden, activation, directory):
    """A model file trained on 75% of the set (stratified, seed 0), and the held-out rows."""
    data = SETS[name]()
    X_tr, X_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.25, stratify=data.target,
                                              random_state=0)
    classes = sorted(set(y_tr.tolist()))
    scaler = Scaler("standard").fit(X_tr)
    net = ffnn.Network([X_tr.shape[1], *hidden, len(classes)], activation, "softmax", seed=0)
    ffnn.train(net, scaler.transform(X_tr), np.eye(len(classes))[y_tr], loss="cross_entropy",
               optimizer=ffnn.Adam(0.003), epochs=60, batch_size=32, seed=0)
    path = os.path.join(directory, f"{name}_{activation}.safetensors")
    ffnn.save(net, path, task="classify", classes=classes, scaler=scaler, target="target",
              feature_names=[f"f{j}" for j in range(X_tr.shape[1])])
    return ffnn.load(path), X_tr, X_te, y_te


def compile_and_label(header, n_in, directory, *, quantized):
    """Labels of the rows the program reads: the float header's predict_label, or the int8 header's
    quantize_input then predict_label (float I/O on)."""
    with open(os.path.join(directory, "m.h"), "w") as f:
        f.write(header)
    lines = (["#define M_FLOAT_IO"] if quantized else []) + [
        '#include "m.h"', "#include <stdio.h>", "int main(void)", "{", f"    float x[{n_in}];", "    int i;"]
    if quantized:
        lines.append(f"    int8_t q[{n_in}];")
    lines += ['    while (scanf("%f", &x[0]) == 1) {',
              f'        for (i = 1; i < {n_in}; ++i) if (scanf("%f", &x[i]) != 1) return 1;']
    lines += (["        m_quantize_input(x, q);", '        printf("%d\\n", m_predict_label(q));'] if quantized
              else ['        printf("%d\\n", m_predict_label(x));'])
    lines += ["    }", "    return 0;", "}"]
    with open(os.path.join(directory, "main.c"), "w") as f:
        f.write("\n".join(lines) + "\n")
    exe = os.path.join(directory, "run")
    subprocess.run([GCC, *FLAGS, "-o", exe, os.path.join(directory, "main.c"), "-lm"], check=True)
    return exe


def object_bytes(header, directory, quantized):
    """size's total of gcc -Os on a file that calls the header's predict: code and constants."""
    arg = "const int8_t *x, int8_t *y" if quantized else "const float *x, float *y"
    with open(os.path.join(directory, "m.h"), "w") as f:
        f.write(header)
    with open(os.path.join(directory, "obj.c"), "w") as f:
        f.write(f'#include "m.h"\nvoid run_it({arg});\nvoid run_it({arg}) {{ m_predict(x, y); }}\n')
    obj = os.path.join(directory, "obj.o")
    subprocess.run([GCC, "-std=c99", "-Os", "-c", "-o", obj, os.path.join(directory, "obj.c")], check=True)
    out = subprocess.run(["size", obj], capture_output=True, text=True, check=True).stdout.splitlines()[1].split()
    return int(out[3])


def run_labels(exe, X):
    text = "\n".join(" ".join(repr(float(np.float32(v))) for v in row) for row in X) + "\n"
    out = subprocess.run([exe], input=text, capture_output=True, text=True, check=True).stdout
    return np.array([int(v) for v in out.split()])


def measure(name, activation, directory):
    import onnxruntime as ort

    hidden, act = NETWORKS[activation]
    net, X_tr, X_te, y_te = train_model(name, hidden, act, directory)
    scaler = net.metadata["scaler"]
    float_labels = np.argmax(net.predict(scaler.transform(X_te)), axis=1)
    row = {"data": name, "network": " -> ".join(map(str, net.sizes)),
           "activations": [a.name for a in net.activations], "n_train": len(X_tr), "n_test": len(X_te),
           "float_accuracy": float(np.mean(float_labels == y_te))}
    text = ffnn.export_c(net, name="m")
    c_labels = run_labels(compile_and_label(text, X_te.shape[1], directory, quantized=False), X_te)
    row["float32_c"] = {"accuracy": float(np.mean(c_labels == y_te)), "header_bytes": len(text),
                        "object_bytes": object_bytes(text, directory, False)}
    for scheme, per_channel in (("per_tensor", False), ("per_channel", True)):
        q = quantize_int8(net, X_tr, per_channel=per_channel)
        text = export_c_int8(q, name="m")
        labels = run_labels(compile_and_label(text, X_te.shape[1], directory, quantized=True), X_te)
        session = ort.InferenceSession(export_onnx_qdq(q).SerializeToString(), providers=["CPUExecutionProvider"])
        _, onnx_labels = session.run(None, {"X": X_te.astype(np.float32)})
        row[f"int8_c_{scheme}"] = {
            "accuracy": float(np.mean(labels == y_te)), "same_label_as_float": float(np.mean(labels == float_labels)),
            "equals_python_int8": bool(np.array_equal(labels, q.label_q(q.quantize_input(X_te)))),
            "header_bytes": len(text), "object_bytes": object_bytes(text, directory, True)}
        row[f"int8_qdq_onnx_{scheme}"] = {"accuracy": float(np.mean(onnx_labels == y_te)),
                                          "same_label_as_float": float(np.mean(onnx_labels == float_labels)),
                                          "same_label_as_int8_c": float(np.mean(onnx_labels == labels))}
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results as JSON")
    args = parser.parse_args()
    if GCC is None:
        sys.exit("this benchmark compiles the headers: it needs gcc")
    import onnxruntime

    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name in SETS:
            for activation in NETWORKS:
                rows.append(measure(name, activation, directory))
    print(f"{'data':14} {'network':20} {'float':>6} {'f32 C':>6} {'int8 C/t':>8} {'int8 C/c':>8} {'QDQ/t':>6} "
          f"{'QDQ/c':>6} {'f32 .h':>8} {'int8 .h':>8} {'f32 obj':>8} {'int8 obj':>8}")
    for r in rows:
        print(f"{r['data']:14} {r['network']:20} {r['float_accuracy']:6.3f} {r['float32_c']['accuracy']:6.3f} "
              f"{r['int8_c_per_tensor']['accuracy']:8.3f} {r['int8_c_per_channel']['accuracy']:8.3f} "
              f"{r['int8_qdq_onnx_per_tensor']['accuracy']:6.3f} {r['int8_qdq_onnx_per_channel']['accuracy']:6.3f} "
              f"{r['float32_c']['header_bytes']:8d} {r['int8_c_per_channel']['header_bytes']:8d} "
              f"{r['float32_c']['object_bytes']:8d} {r['int8_c_per_channel']['object_bytes']:8d}")
    if args.json:
        gcc = subprocess.run([GCC, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        doc = {"date": time.strftime("%Y-%m-%d"), "versions": {"ffnn": ffnn.__version__, "numpy": np.__version__,
                                                              "onnxruntime": onnxruntime.__version__, "gcc": gcc},
               "results": rows}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
