"""Convert one TensorFlow.js graph model (model.json + .bin) to ONNX, and check it against TensorFlow.

Runs only in the build-only environment that `python -m core models build` makes (TensorFlow and
tf2onnx live there, never in the app's venv: their pins would fight chromadb's and mediapipe's).
The app never imports this file.

    python tfjs_to_onnx.py MODEL.json OUT.onnx --inputs CHECK.npz --report REPORT.json

Steps, each named in the error when it fails:
  read     parse model.json and the weight shards; float16/uint8-quantized weights are dequantized
  unfuse   TFJS-only fused ops (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul with their
           `fused_ops` list) become the plain TF ops they stand for, which tf2onnx knows
  tf       the graph runs in TensorFlow on the check inputs (the reference)
  onnx     tf2onnx converts the graph
  check    onnxruntime runs the ONNX file on the same inputs; every output must match TensorFlow's
The check inputs are made by the app-side builder from real photos with the app's own
preprocessing, and the reference outputs go back in REPORT's .npz so the app can run the same
check in its own onnxruntime.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class StepError(RuntimeError):
    def __init__(self, step: str, detail: str):
        super().__init__(f"{step}: {detail}")
        self.step = step


def _tensor_name(name: str) -> str:
    """Signature names come as 'x' or already as 'x:0' (movenet, nanodet); tf2onnx wants 'x:0'."""
    return name if ":" in name else f"{name}:0"


def read_weights(model_json: dict, folder: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for group in model_json["weightsManifest"]:
        blob = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            if q:
                qdtype = np.dtype(q["dtype"])
                raw = np.frombuffer(blob, qdtype, count, offset)
                offset += count * qdtype.itemsize
                if q["dtype"] == "float16":
                    values = raw.astype(np.float32)
                else:  # uint8/uint16 affine quantization
                    values = raw.astype(np.float32) * float(q["scale"]) + float(q["min"])
                values = values.astype(np.dtype(w["dtype"]))
            else:
                dtype = np.dtype({"float32": "float32", "int32": "int32", "bool": "bool"}[w["dtype"]])
                values = np.frombuffer(blob, dtype, count, offset).copy()
                offset += count * dtype.itemsize
            out[w["name"]] = values.reshape(shape)
        if offset != len(blob):
            raise StepError("read", f"weights of group {group['paths']} use {offset} of {len(blob)} bytes: the .bin does not match model.json")
    return out


_ACTIVATIONS = {"Relu": "Relu", "Relu6": "Relu6", "Elu": "Elu", "Sigmoid": "Sigmoid", "Tanh": "Tanh",
                "LeakyRelu": "LeakyRelu", "Prelu": None}


def unfuse(graph_def, tf) -> int:
    """Replace TFJS fused ops by the plain op + BiasAdd + activation they stand for. Returns the count."""
    from tensorflow.core.framework import node_def_pb2

    plain = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative", "_FusedMatMul": "MatMul"}
    keep_attrs = {"Conv2D": ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations", "use_cudnn_on_gpu"),
                  "DepthwiseConv2dNative": ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations"),
                  "MatMul": ("T", "transpose_a", "transpose_b")}
    nodes = []
    count = 0
    for node in graph_def.node:
        if node.op not in plain:
            nodes.append(node)
            continue
        count += 1
        fused = [s.decode() for s in node.attr["fused_ops"].list.s]
        inputs = [i for i in node.input if not i.startswith("^")]
        controls = [i for i in node.input if i.startswith("^")]
        op = plain[node.op]
        base = node_def_pb2.NodeDef(name=f"{node.name}/_base", op=op, input=inputs[:2] + controls, device=node.device)
        for key in keep_attrs[op]:
            if key in node.attr:
                base.attr[key].CopyFrom(node.attr[key])
        last = base.name
        chain = [base]
        extra = inputs[2:]
        for i, f in enumerate(fused):
            name = node.name if i == len(fused) - 1 else f"{node.name}/_{f}"
            if f == "BiasAdd":
                n = node_def_pb2.NodeDef(name=name, op="BiasAdd", input=[last, extra.pop(0)])
                n.attr["T"].CopyFrom(node.attr["T"])
                if op != "MatMul" and "data_format" in node.attr:
                    n.attr["data_format"].CopyFrom(node.attr["data_format"])
            elif f == "Prelu":
                # prelu(x) = relu(x) - alpha * relu(-x), with the alpha tensor as the next input
                raise StepError("unfuse", f"{node.name}: fused Prelu is not supported")
            elif f in _ACTIVATIONS:
                n = node_def_pb2.NodeDef(name=name, op=_ACTIVATIONS[f], input=[last])
                n.attr["T"].CopyFrom(node.attr["T"])
                if f == "LeakyRelu" and "leakyrelu_alpha" in node.attr:
                    n.attr["alpha"].f = node.attr["leakyrelu_alpha"].f
            else:
                raise StepError("unfuse", f"{node.name}: fused op {f!r} is not supported")
            chain.append(n)
            last = n.name
        if not fused:
            chain[0].name = node.name
        nodes.extend(chain)
    del graph_def.node[:]
    graph_def.node.extend(nodes)
    return count


def load_graph(path: Path, tf):
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2

    try:
        model = json.loads(path.read_text())
        topology = model["modelTopology"]
        graph_def = json_format.ParseDict(topology, graph_pb2.GraphDef(), ignore_unknown_fields=True)
        weights = read_weights(model, path.parent)
    except StepError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure names the step and the file
        raise StepError("read", f"{path}: {type(exc).__name__}: {exc}") from exc
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights.pop(node.name)))
            dtype = node.attr["value"].tensor.dtype
            node.attr["dtype"].type = dtype
    if weights:
        raise StepError("read", f"weights with no Const node in the graph: {sorted(weights)[:5]}")
    unfuse(graph_def, tf)
    signature = model.get("signature") or {}
    inputs = [_tensor_name(v["name"]) for v in signature.get("inputs", {}).values()]
    outputs = [_tensor_name(v["name"]) for v in signature.get("outputs", {}).values()]
    if not inputs:  # graphs without a signature (emotion): the placeholders in, the graph's sinks out
        inputs = [f"{n.name}:0" for n in graph_def.node if n.op == "Placeholder"]
    if not outputs:
        used = {i.split(":")[0].lstrip("^") for n in graph_def.node for i in n.input}
        outputs = [f"{n.name}:0" for n in graph_def.node if n.name not in used and n.op not in ("Const", "Placeholder", "NoOp")]
    return graph_def, inputs, outputs


def set_centernet_size(graph_def, size: int, tf) -> None:
    """MB3-CenterNet is trained at 512 px, but its graph is convolutional up to a few constants:
    the three upsampling sizes (size/16, /8, /4), the heat map's width and its flattened length.
    Rewriting them runs it at another size (smaller: faster, and small objects are missed sooner)."""
    if size % 32:
        raise StepError("read", f"--centernet-size must be a multiple of 32, not {size}")
    by = {n.name: n for n in graph_def.node}

    def put(name: str, value) -> None:
        if name not in by:
            raise StepError("read", f"--centernet-size: this graph has no node {name}; is it CenterNet?")
        by[name].attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array(value, dtype=np.int32)))

    head = "tower_0/CenternetHead/"
    put(head + "c5_upsample/up_sampling2d/mul", [size // 16] * 2)
    put(head + "c4_upsample/up_sampling2d_1/mul", [size // 8] * 2)
    put(head + "c3_upsample/up_sampling2d_2/mul", [size // 4] * 2)
    put("tower_0/BatchGather/concat", [(size // 4) ** 2, 4])
    put("tower_0/strided_slice_6", size // 4)
    for n in graph_def.node:
        if n.op == "Placeholder":
            n.attr["shape"].shape.dim[1].size = size
            n.attr["shape"].shape.dim[2].size = size


def run_tf(graph_def, inputs, outputs, feeds: list[np.ndarray], tf) -> list[list[np.ndarray]]:
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as sess:
        return [sess.run(outputs, {inputs[0]: x}) for x in feeds]


def _difference(want: np.ndarray, got: np.ndarray, score_col: int | None) -> float:
    """Largest error relative to the output's scale; for row lists, each confident reference row
    against its nearest row of the other run (TopK may order near-ties differently)."""
    want, got = want.astype(np.float64), got.astype(np.float64)
    scale = float(np.max(np.abs(want))) + 1e-6 if want.size else 1.0
    if score_col is None:
        return float(np.max(np.abs(got - want))) / scale if want.size else 0.0
    w = want.reshape(-1, want.shape[-1])
    g = got.reshape(-1, got.shape[-1])
    worst = 0.0
    for row in w[w[:, score_col] >= 0.2]:
        worst = max(worst, float(np.min(np.max(np.abs(g - row), axis=1))) / scale)
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_json", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--inputs", type=Path, required=True, help=".npz of check inputs (arrays x0, x1, ...)")
    ap.add_argument("--report", type=Path, required=True, help="JSON report; reference outputs go beside it as .npz")
    ap.add_argument("--outputs", nargs="*", help="tensor names to keep (default: the signature's outputs)")
    ap.add_argument("--rows", nargs="*", default=[], metavar="OUTPUT:COL",
                    help="outputs that are lists of rows sorted by a score in column COL (TopK): compared as sets "
                         "of the rows that score >= 0.2, since ties may swap order")
    ap.add_argument("--centernet-size", type=int, default=0, help="run MB3-CenterNet at this input size (default: 512)")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--rtol", type=float, default=0.02, help="largest error allowed, relative to the output's largest value")
    args = ap.parse_args(argv)
    t0 = time.time()
    report: dict = {"model": args.model_json.stem}
    try:
        import tensorflow as tf

        graph_def, inputs, outputs = load_graph(args.model_json, tf)
        if args.centernet_size:
            set_centernet_size(graph_def, args.centernet_size, tf)
        if args.outputs:
            outputs = [_tensor_name(o) for o in args.outputs]
        rows = {_tensor_name(r.rsplit(":", 1)[0]): int(r.rsplit(":", 1)[1]) for r in args.rows}
        report.update(inputs=inputs, outputs=outputs)
        with np.load(args.inputs) as z:
            feeds = [z[k] for k in sorted(z.files, key=lambda k: int(k[1:]))]
        if not feeds:
            raise StepError("read", f"{args.inputs} holds no check inputs")
        try:
            ref = run_tf(graph_def, inputs, outputs, feeds, tf)
        except Exception as exc:  # noqa: BLE001
            raise StepError("tf", f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        try:
            import tf2onnx

            model_proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs, opset=args.opset)
        except Exception as exc:  # noqa: BLE001
            raise StepError("onnx", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        tmp = args.out.with_suffix(".onnx.part")
        tmp.write_bytes(model_proto.SerializeToString())
        try:
            import onnxruntime as ort

            sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            in_name = sess.get_inputs()[0].name
            out_names = [o.name for o in sess.get_outputs()]
            worst = 0.0
            for x, want in zip(feeds, ref):
                got = dict(zip(out_names, sess.run(None, {in_name: x})))
                for name, w in zip(outputs, want):
                    g = got[name]
                    if g.shape != w.shape:
                        raise StepError("check", f"output {name}: shape {g.shape} in ONNX, {w.shape} in TensorFlow")
                    worst = max(worst, _difference(w, g, rows.get(name)))
            report["max_rel_diff"] = worst
            if worst > args.rtol:
                raise StepError("check", f"ONNX differs from TensorFlow by {worst:.4g} (> {args.rtol}, relative) on the check photos")
        except StepError:
            tmp.unlink(missing_ok=True)
            raise
        except Exception as exc:  # noqa: BLE001
            tmp.unlink(missing_ok=True)
            raise StepError("check", f"{type(exc).__name__}: {exc}") from exc
        os.replace(tmp, args.out)
        np.savez(args.report.with_suffix(".npz"), **{f"y{i}_{j}": y for i, ys in enumerate(ref) for j, y in enumerate(ys)})
        report.update(ok=True, onnx_bytes=args.out.stat().st_size, seconds=round(time.time() - t0, 1), photos=len(feeds))
    except StepError as exc:
        report.update(ok=False, step=exc.step, error=str(exc))
    args.report.write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0 if report.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
