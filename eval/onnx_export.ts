/**
 * Exports the encoder as a standard ONNX graph (opset 17) built with `npm:onnx-proto`:
 * inputs `input_ids`, `attention_mask` (int64 [batch, seq]); outputs `pooled` (the last
 * hidden states averaged over unmasked positions, [batch, hidden]: the sentence vector
 * retrieval uses) and, for a classifier, `features` (what the head reads: `pooled`, the
 * max or `<s>`, as `classifier_pooling` says) and `logits`. The head alone is a second graph,
 * `features` -> `logits`, so an evaluation can score moved features (language centring)
 * without running the encoder again. Initializers carry the HF parameter names (matrices
 * stored as HF's [out, in] and transposed in-graph).
 * @module
 */
import onnxProto from "onnx-proto";
import type { EncoderConfig } from "../model/config.ts";
import type { NamedTensor } from "../model/safetensors.ts";

const { onnx } = onnxProto;
const F32 = onnx.TensorProto.DataType.FLOAT;
const I64 = onnx.TensorProto.DataType.INT64;
type Node = InstanceType<typeof onnx.NodeProto>;
type Tensor = InstanceType<typeof onnx.TensorProto>;
type ValueInfo = InstanceType<typeof onnx.ValueInfoProto>;

/** What one graph is built with: nodes and initializers, named as HF names the weights. */
interface GraphBuilder {
  node: (op: string, inputs: string[], attrs?: Record<string, number | number[]>, hint?: string) => string;
  constF: (name: string, values: number[], dims?: number[]) => string;
  constI: (name: string, values: number[], dims: number[]) => string;
  weight: (name: string) => string;
  linear: (x: string, prefix: string) => string;
  /** Names `value` as the graph output `name`. */
  output: (value: string, name: string) => void;
  io: (name: string, type: number, dims: (string | number)[]) => ValueInfo;
  finish: (name: string, input: ValueInfo[], output: ValueInfo[]) => Uint8Array;
}

function graphBuilder(weights: Map<string, NamedTensor>): GraphBuilder {
  const nodes: Node[] = [];
  const inits: Tensor[] = [];
  let k = 0;
  const tmp = (hint: string) => `${hint}_${k++}`;
  const node = (op: string, inputs: string[], attrs: Record<string, number | number[]> = {}, hint = op) => {
    const out = tmp(hint);
    nodes.push(onnx.NodeProto.create({
      opType: op,
      input: inputs,
      output: [out],
      name: out,
      attribute: Object.entries(attrs).map(([name, v]) =>
        Array.isArray(v)
          ? onnx.AttributeProto.create({ name, ints: v, type: onnx.AttributeProto.AttributeType.INTS })
          : Number.isInteger(v) && name !== "epsilon"
          ? onnx.AttributeProto.create({ name, i: v, type: onnx.AttributeProto.AttributeType.INT })
          : onnx.AttributeProto.create({ name, f: v, type: onnx.AttributeProto.AttributeType.FLOAT })
      ),
    }));
    return out;
  };
  const named = new Set<string>();
  const constF = (name: string, values: number[], dims: number[] = []) => {
    if (named.has(name)) return name;
    named.add(name);
    inits.push(onnx.TensorProto.create({ name, dataType: F32, dims, floatData: values }));
    return name;
  };
  const constI = (name: string, values: number[], dims: number[]) => {
    if (named.has(name)) return name;
    named.add(name);
    inits.push(onnx.TensorProto.create({ name, dataType: I64, dims, int64Data: values }));
    return name;
  };
  const weight = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`export: missing tensor '${name}'`);
    inits.push(onnx.TensorProto.create({
      name,
      dataType: F32,
      dims: t.shape,
      rawData: new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)),
    }));
    return name;
  };
  const linear = (x: string, prefix: string) => {
    const wt = node("Transpose", [weight(`${prefix}.weight`)], { perm: [1, 0] }, `${prefix}.wT`);
    return node("Add", [node("MatMul", [x, wt]), weight(`${prefix}.bias`)], {}, prefix);
  };
  const output = (value: string, name: string) => {
    nodes.push(onnx.NodeProto.create({ opType: "Identity", input: [value], output: [name], name }));
  };
  const io = (name: string, type: number, dims: (string | number)[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({
        tensorType: onnx.TypeProto.Tensor.create({
          elemType: type,
          shape: onnx.TensorShapeProto.create({
            dim: dims.map((d) =>
              typeof d === "string"
                ? onnx.TensorShapeProto.Dimension.create({ dimParam: d })
                : onnx.TensorShapeProto.Dimension.create({ dimValue: d })
            ),
          }),
        }),
      }),
    });
  const finish = (name: string, input: ValueInfo[], output: ValueInfo[]) =>
    onnx.ModelProto.encode(onnx.ModelProto.create({
      irVersion: 8,
      producerName: "graddrop",
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: "", version: 17 })],
      graph: onnx.GraphProto.create({ name, node: nodes, initializer: inits, input, output }),
    })).finish();
  return { node, constF, constI, weight, linear, output, io, finish };
}

/** RoBERTa's classification head (dense, tanh, out_proj) on `features`; returns the logits' name. */
function classifierHead(b: GraphBuilder, features: string): string {
  return b.linear(b.node("Tanh", [b.linear(features, "classifier.dense")]), "classifier.out_proj");
}

/**
 * Builds the ONNX model bytes for a classifier (`numLabels` > 0) or a bare encoder (0).
 *
 * @example
 * ```ts ignore
 * const bytes = exportClassifier(cfg, await readSafetensors("checkpoint/model.safetensors"), 6);
 * await Deno.writeFile("model.onnx", bytes);
 * ```
 */
export function exportClassifier(
  cfg: EncoderConfig,
  weights: Map<string, NamedTensor>,
  numLabels: number,
): Uint8Array {
  const b = graphBuilder(weights);
  const { node, constF, constI, weight, linear } = b;
  const layerNorm = (x: string, prefix: string) =>
    node("LayerNormalization", [x, weight(`${prefix}.weight`), weight(`${prefix}.bias`)], {
      axis: -1,
      epsilon: cfg.layer_norm_eps,
    }, prefix);
  const gelu = (x: string) => {
    const erf = node("Erf", [node("Div", [x, constF("sqrt2", [Math.SQRT2])])]);
    return node(
      "Mul",
      [node("Mul", [x, node("Add", [erf, constF("one", [1])])]), constF("half", [0.5])],
      {},
      "gelu",
    );
  };
  const D = cfg.hidden_size, H = cfg.num_attention_heads, dh = D / H;
  // RoBERTa positions: cumsum over non-pad tokens, offset by the pad id.
  const padI = constI("pad_id", [cfg.pad_token_id], []);
  const notPad = node("Cast", [node("Not", [node("Equal", ["input_ids", padI])])], { to: I64 });
  const pos = node(
    "Add",
    [node("Mul", [node("CumSum", [notPad, constI("axis1", [1], [])]), notPad]), padI],
    {},
    "positions",
  );
  let x = node("Add", [
    node("Add", [
      node("Gather", [weight("roberta.embeddings.word_embeddings.weight"), "input_ids"]),
      node("Gather", [weight("roberta.embeddings.position_embeddings.weight"), pos]),
    ]),
    node("Gather", [weight("roberta.embeddings.token_type_embeddings.weight"), constI("zero", [0], [])]),
  ]);
  x = layerNorm(x, "roberta.embeddings.LayerNorm");
  const maskF = node("Cast", ["attention_mask"], { to: F32 });
  const bias = node(
    "Unsqueeze",
    [
      node("Mul", [node("Sub", [constF("one_m", [1]), maskF]), constF("neg", [-1e9])]),
      constI("axes12", [1, 2], [2]),
    ],
    {},
    "mask_bias",
  );
  const headsShape = constI("heads_shape", [0, 0, H, dh], [4]);
  const mergeShape = constI("merge_shape", [0, 0, D], [3]);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const l = `roberta.encoder.layer.${i}`;
    const split = (name: string, perm: number[]) =>
      node("Transpose", [node("Reshape", [linear(x, `${l}.attention.self.${name}`), headsShape])], { perm });
    const q = split("query", [0, 2, 1, 3]), kT = split("key", [0, 2, 3, 1]), v = split("value", [0, 2, 1, 3]);
    const scores = node("Add", [
      node("Mul", [node("MatMul", [q, kT]), constF(`scale${i}`, [1 / Math.sqrt(dh)])]),
      bias,
    ]);
    const ctx = node("MatMul", [node("Softmax", [scores], { axis: -1 }), v]);
    const merged = node("Reshape", [node("Transpose", [ctx], { perm: [0, 2, 1, 3] }), mergeShape]);
    x = layerNorm(
      node("Add", [x, linear(merged, `${l}.attention.output.dense`)]),
      `${l}.attention.output.LayerNorm`,
    );
    const ff = linear(gelu(linear(x, `${l}.intermediate.dense`)), `${l}.output.dense`);
    x = layerNorm(node("Add", [x, ff]), `${l}.output.LayerNorm`);
  }
  // Mean over unmasked positions: sum(h * mask) / sum(mask), as `meanPool` does in training.
  const mask3 = node("Unsqueeze", [maskF, constI("axes2", [2], [1])], {}, "mask3");
  const summed = node("ReduceSum", [node("Mul", [x, mask3]), constI("axis1_list", [1], [1])], {
    keepdims: 0,
  });
  const count = node("ReduceSum", [mask3, constI("axis1_list", [1], [1])], { keepdims: 0 });
  const pooled = node("Div", [summed, count], {}, "pooled_value");
  b.output(pooled, "pooled");
  if (numLabels > 0) {
    // Pad positions sit 1e9 below every real one before the max, as `maxPool` does in training.
    const padsBelow = () =>
      node("Add", [x, node("Mul", [node("Sub", [constF("one_m", [1]), mask3]), constF("neg", [-1e9])])]);
    const readers = {
      mean: () => pooled,
      max: () => node("ReduceMax", [padsBelow()], { axes: [1], keepdims: 0 }, "max_pooled"),
      cls: () => node("Gather", [x, constI("zero_idx", [0], [])], { axis: 1 }, "cls"),
    };
    const read = readers[cfg.classifier_pooling ?? "cls"]();
    b.output(read, "features");
    b.output(classifierHead(b, read), "logits");
  }
  const { io } = b;
  return b.finish(
    numLabels > 0 ? "xlm_roberta_classifier" : "xlm_roberta_encoder",
    [io("input_ids", I64, ["batch", "sequence"]), io("attention_mask", I64, ["batch", "sequence"])],
    [
      io("pooled", F32, ["batch", D]),
      ...(numLabels > 0 ? [io("features", F32, ["batch", D]), io("logits", F32, ["batch", numLabels])] : []),
    ],
  );
}

/**
 * Builds the classifier head alone as ONNX model bytes: input `features` ([batch, hidden], what
 * the full graph's `features` output gives), output `logits`; the same nodes and weights as the
 * head inside {@link exportClassifier}.
 *
 * @example
 * ```ts ignore
 * await Deno.writeFile("head.onnx", exportHead(cfg, weights, 7));
 * ```
 */
export function exportHead(
  cfg: EncoderConfig,
  weights: Map<string, NamedTensor>,
  numLabels: number,
): Uint8Array {
  const b = graphBuilder(weights);
  b.output(classifierHead(b, "features"), "logits");
  return b.finish(
    "xlm_roberta_classifier_head",
    [b.io("features", F32, ["batch", cfg.hidden_size])],
    [b.io("logits", F32, ["batch", numLabels])],
  );
}
