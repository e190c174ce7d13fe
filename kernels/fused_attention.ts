/**
 * Self-attention `dropout(softmax(Q K^T * scale + keyMask)) V` on a software WebGPU adapter,
 * reading Q, K and V as the projections write them (`[B, T, H * dh]`) and writing the context
 * in the same layout, so no head is ever transposed and the `[B, H, T, T]` probabilities never
 * exist. Forward: each query row's log-sum-exp, then its output. Backward (as
 * FlashAttention's, recomputing the probabilities): `delta = rowsum(dO * O)`, then dQ per query
 * row and dK, dV per key row. Dropout on the probabilities keeps `dropoutGpu`'s mask of the
 * `[B, H, T, T]` tensor element by element (`kernels/dropout.ts`), drawn once a step into bits,
 * so a step keeps its masks bit for bit whichever path runs.
 *
 * From tfjs ops the same attention is 8 dispatches forward and about 10 backward per layer,
 * four of them head transposes and four batched matmuls with K = dh or T, which llvmpipe runs
 * at 3-4 GFLOP/s; here it is 7 dispatches. Each thread computes a block of rows and loops over the other
 * side, with no workgroup memory and no barrier. At the shipped model's shapes (B16 x T64, 4
 * heads of 32) one layer's forward and backward took about 35 ms of wall time on lavapipe
 * against about 55 for the tfjs ops. The twin is the tfjs-ops attention in `model/encoder.ts`.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { webgpu_util } from "@tensorflow/tfjs-backend-webgpu";
import { type DropoutSite, dropoutSite } from "./dropout.ts";
import { KEEP_WGSL, PCG_WGSL } from "./rng.ts";
import { uniformData, type UniformField, wgslFields } from "./uniforms.ts";

/**
 * Threads a workgroup: one SIMD group of llvmpipe's 256-bit vectors. A workgroup's threads
 * share one head of one sequence.
 */
const WG = 8;

/** Shape of one attention call; `drop` is the probabilities' dropout site, or null. */
interface Shape {
  B: number;
  T: number;
  H: number;
  dh: number;
  scale: number;
  drop: DropoutSite | null;
}

/** Which kernel: a query row's log-sum-exp, its output, `delta`, or one of the three gradients. */
type Kernel = "lse" | "out" | "delta" | "dq" | "dk" | "dv";

const INPUTS: Record<Kernel, string[]> = {
  lse: ["Q", "K", "Mask"],
  out: ["Q", "K", "V", "Mask", "Lse"],
  delta: ["O", "Dout"],
  dq: ["Q", "K", "V", "Mask", "Lse", "Dout", "Delta"],
  dk: ["Q", "K", "V", "Mask", "Lse", "Dout", "Delta"],
  dv: ["Q", "K", "Mask", "Lse", "Dout"],
};

/**
 * Rows a thread computes. Each row (or column) the loop reads is then used by that many rows
 * in registers. Mesa's llvmpipe loads a storage buffer lane by lane and
 * component by component, and that load, not the arithmetic, was the cost: one row a thread
 * made these kernels about 5x slower than the tfjs-ops attention they replace; 8 rows beat 2,
 * 4 and 16. Rows are read as vec4 (about 1.7x faster again) and the code is unrolled over rows
 * and the head dimension into named values, because llvmpipe keeps a private array indexed in
 * a loop in memory.
 */
const ROWS: Record<Kernel, number> = { lse: 8, out: 8, delta: 1, dq: 8, dk: 8, dv: 8 };

/** The kernels that apply the probabilities' dropout. */
const USE_BITS = new Set<Kernel>(["out", "dq", "dk", "dv"]);

// The key-side kernels read one dropout word for all of a thread's key rows.
if (32 % ROWS.dk || 32 % ROWS.dv) throw new Error("rows a thread must divide the 32 keys of a dropout word");

/** The `[B, T, H * dh]` tensors, read and written as vec4. */
const VEC4 = new Set(["Q", "K", "V", "O", "Dout"]);

const each = (n: number, line: (i: number) => string, sep = "\n  ") =>
  Array.from({ length: n }, (_, i) => line(i)).join(sep);

/** WGSL generators for a kernel's `R` rows of head dimension `dh` (`n = dh / 4` vec4s). */
class Rows {
  readonly n: number;
  constructor(readonly R: number, dh: number) {
    this.n = dh / 4;
  }

  /**
   * Per row `j`: its index `r{j}` (clamped: a row past T recomputes the last and stores
   * nothing), vec4 offset `a{j}`, `g{j}`, and its rows of `loads` (`[buffer, name]`).
   */
  own(loads: [string, string][]): string {
    return each(this.R, (j) =>
      `let r${j} = min(first + ${j}, T - 1);
  let a${j} = at(b, r${j}, h);
  let g${j} = row0 + r${j};
  ${loads.map(([src, n]) => each(this.n, (i) => `let ${n}${j}_${i} = ${src}[a${j} + ${i}];`)).join("\n  ")}`);
  }

  /** The loop step's row of `src` at vec4 offset `at` into `name0..`. */
  loopRow(src: string, name: string, at: string): string {
    return each(this.n, (i) => `let ${name}${i} = ${src}[${at} + ${i}];`, "\n    ");
  }

  /** Own row `own` of row `j` dotted with the loop row `other`. */
  dot(own: string, j: number, other: string): string {
    return `(${each(this.n, (i) => `dot(${own}${j}_${i}, ${other}${i})`, " + ")})`;
  }

  declareAcc(): string {
    return each(this.R, (j) => each(this.n, (i) => `var acc${j}_${i} = vec4<f32>(0.0);`, " "));
  }

  accumulate(j: number, w: string, row: string): string {
    return each(this.n, (i) => `acc${j}_${i} += ${w} * ${row}${i};`, "\n    ");
  }

  /** Each row's accumulators out to its output row; `value(j)` instead writes one value at `g{j}`. */
  store(value?: (j: number) => string): string {
    return each(this.R, (j) =>
      `if (first + ${j} < T) {
    ${
        value
          ? `setOutputAtIndex(g${j}, ${value(j)});`
          : each(this.n, (i) => `setOutputAtIndex(a${j} + ${i}, acc${j}_${i});`, " ")
      }
  }`);
  }

  /**
   * Loop-over-keys kernels: each row's word of the dropout bits, loaded every 32 keys, and the
   * factor `keep(j)` of key `k`; 1 without dropout.
   */
  keyWords(drop: boolean): { declare: string; load: string; keep: (j: number) => string } {
    if (!drop) return { declare: "", load: "", keep: () => "1.0" };
    return {
      declare: this.per((j) => `var word${j} = 0u;`),
      load: `if ((k & 31) == 0) { ${
        this.per((j) => `word${j} = bitcast<u32>(Bits[g${j} * uniforms.W + (k >> 5)]);`)
      } }`,
      keep: (j) => `f32((word${j} >> u32(k & 31)) & 1u) * uniforms.dscale`,
    };
  }

  /**
   * Loop-over-queries kernels: query `q`'s word of the dropout bits holding this thread's key
   * columns (rows a thread divides 32, so its columns share one word), and the factor `keep(j)`.
   */
  queryWord(drop: boolean): { load: string; keep: (j: number) => string } {
    if (!drop) return { load: "", keep: () => "1.0" };
    return {
      load: "let word = bitcast<u32>(Bits[(row0 + q) * uniforms.W + (first >> 5)]);",
      keep: (j) => `f32((word >> u32(r${j} & 31)) & 1u) * uniforms.dscale`,
    };
  }

  /** `line(j)` for each row. */
  per(line: (j: number) => string): string {
    return each(this.R, line, "\n    ");
  }
}

/**
 * The body of `main` once the thread's first row `first` is known, of head `h` of sequence `b`,
 * `row0` the index of the head's row 0 in `[B, H, T]`; `at(b, t, h)` is where the head's slice
 * of token `t` starts in `[B, T, H * dh]`. With dropout, `Bits` holds the kept bits of the
 * `[B, H, T, T]` probabilities, 32 keys a word ({@link DropoutBitsProgram}).
 */
function body(kernel: Kernel, dh: number, drop: boolean): string {
  const w = new Rows(ROWS[kernel], dh);
  const kw = w.keyWords(drop), qw = w.queryWord(drop);
  /** The query-row kernels' loop over keys: key `k`'s rows `kk`, `vv` and mask `mk`, then `perRow(j)`. */
  const overKeys = (perRow: (j: number) => string) =>
    `${w.declareAcc()}
  ${kw.declare}
  for (var k = 0; k < T; k++) {
    let ka = at(b, k, h);
    ${w.loopRow("K", "kk", "ka")}
    ${w.loopRow("V", "vv", "ka")}
    let mk = Mask[b * T + k];
    ${kw.load}
    ${w.per(perRow)}
  }
  ${w.store()}`;
  const score = (own: string, j: number, other: string, mask: string) =>
    `${w.dot(own, j, other)} * uniforms.scale + ${mask}`;
  switch (kernel) {
    case "lse":
      return `
  ${w.own([["Q", "q"]])}
  ${w.per((j) => `var m${j} = -3.402823e+38; var s${j} = 0.0;`)}
  for (var k = 0; k < T; k++) {
    ${w.loopRow("K", "kk", "at(b, k, h)")}
    let mk = Mask[b * T + k];
    ${
        w.per((j) =>
          `let x${j} = ${score("q", j, "kk", "mk")};
    let mx${j} = max(m${j}, x${j});
    s${j} = s${j} * exp(m${j} - mx${j}) + exp(x${j} - mx${j});
    m${j} = mx${j};`
        )
      }
  }
  ${w.store((j) => `m${j} + log(s${j})`)}`;
    case "delta":
      return `
  ${w.own([["O", "o"]])}
  ${w.store((j) => `${each(dh / 4, (i) => `dot(o${j}_${i}, Dout[a${j} + ${i}])`, " + ")}`)}`;
    case "out":
      return `
  ${w.own([["Q", "q"]])}
  ${w.per((j) => `let l${j} = Lse[g${j}];`)}
  ${
        overKeys((j) =>
          `let p${j} = exp(${score("q", j, "kk", "mk")} - l${j}) * ${kw.keep(j)};
    ${w.accumulate(j, `p${j}`, "vv")}`
        )
      }`;
    case "dq":
      return `
  ${w.own([["Q", "q"], ["Dout", "o"]])}
  ${w.per((j) => `let l${j} = Lse[g${j}]; let d${j} = Delta[g${j}];`)}
  ${
        overKeys((j) =>
          `let ds${j} = exp(${score("q", j, "kk", "mk")} - l${j}) * (${w.dot("o", j, "vv")} * ${
            kw.keep(j)
          } - d${j}) * uniforms.scale;
    ${w.accumulate(j, `ds${j}`, "kk")}`
        )
      }`;
    case "dk":
    case "dv":
      return `
  ${w.own(kernel === "dk" ? [["K", "k"], ["V", "v"]] : [["K", "k"]])}
  ${w.per((j) => `let mk${j} = Mask[b * T + r${j}];`)}
  ${w.declareAcc()}
  for (var q = 0; q < T; q++) {
    let qa = at(b, q, h);
    ${w.loopRow("Q", "qq", "qa")}
    ${w.loopRow("Dout", "oo", "qa")}
    let lq = Lse[row0 + q];
    ${qw.load}
    ${kernel === "dk" ? "let dlt = Delta[row0 + q];" : ""}
    ${
        w.per((j) =>
          kernel === "dk"
            ? `let ds${j} = exp(${score("k", j, "qq", `mk${j}`)} - lq) * (${w.dot("v", j, "oo")} * ${
              qw.keep(j)
            } - dlt) * uniforms.scale;
    ${w.accumulate(j, `ds${j}`, "qq")}`
            : `let p${j} = exp(${score("k", j, "qq", `mk${j}`)} - lq) * ${qw.keep(j)};
    ${w.accumulate(j, `p${j}`, "oo")}`
        )
      }
  }
  ${w.store()}`;
  }
}

const words = (T: number) => Math.ceil(T / 32);

const ATTENTION_UNIFORMS: UniformField<Shape>[] = [
  { name: "T", type: "i32", value: (s) => s.T },
  { name: "H", type: "i32", value: (s) => s.H },
  { name: "W", type: "i32", value: (s) => words(s.T) },
  { name: "scale", type: "f32", value: (s) => s.scale },
  { name: "dscale", type: "f32", value: (s) => s.drop?.scale ?? 1 },
];

const BITS_UNIFORMS: UniformField<{ s: Shape; site: DropoutSite }>[] = [
  { name: "T", type: "i32", value: ({ s }) => s.T },
  { name: "W", type: "i32", value: ({ s }) => words(s.T) },
  { name: "key", type: "u32", value: ({ site }) => site.key },
  { name: "threshold", type: "u32", value: ({ site }) => site.threshold },
];

/** One of the six kernels: a thread per `ROWS[kernel]` rows, a workgroup per `WG` threads of one head of one sequence. */
class FusedAttentionProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  variableNames: string[];
  variableComponents: number[];
  outputComponent: number;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [WG, 1, 1];
  uniforms = wgslFields(ATTENTION_UNIFORMS);

  constructor(readonly kernel: Kernel, readonly s: Shape) {
    const perRow = kernel === "lse" || kernel === "delta";
    this.outputShape = perRow ? [s.B, s.H, s.T] : [s.B, s.T, s.H * s.dh];
    const bits = s.drop !== null && USE_BITS.has(kernel);
    this.variableNames = bits ? [...INPUTS[kernel], "Bits"] : INPUTS[kernel];
    this.variableComponents = this.variableNames.map((n) => (VEC4.has(n) ? 4 : 1));
    this.outputComponent = perRow ? 1 : 4;
    this.shaderKey = `graddropAttention_${kernel}_${s.dh}_${bits ? "drop" : "nodrop"}`;
    this.dispatchLayout = webgpu_util.flatDispatchLayout(this.outputShape);
    this.dispatch = [Math.ceil(s.T / (WG * ROWS[kernel])), s.B * s.H, 1];
  }

  getUserCode(): string {
    const d = this.s.dh;
    return `
fn at(b : i32, t : i32, h : i32) -> i32 {
  return (b * uniforms.T + t) * uniforms.H * ${d / 4} + h * ${d / 4};
}
fn main(index : i32) {
  let T = uniforms.T;
  let first = (i32(workgroupId.x) * ${WG} + i32(localId.x)) * ${ROWS[this.kernel]};
  if (first >= T) { return; }
  let b = i32(workgroupId.y) / uniforms.H;
  let h = i32(workgroupId.y) % uniforms.H;
  let row0 = i32(workgroupId.y) * T;
  ${body(this.kernel, d, this.variableNames.includes("Bits"))}
}`;
  }
}

/**
 * The kept bits of dropout on the `[B, H, T, T]` probabilities, 32 keys to a word (`[B * H * T,
 * ceil(T / 32)]`, int32): each element's draw is `dropoutGpu`'s, made once here instead of
 * once in each of the four kernels that need it.
 */
class DropoutBitsProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey = "graddropAttentionDropoutBits";
  variableNames: string[] = [];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = wgslFields(BITS_UNIFORMS);
  size = true;

  constructor(rows: number, words: number) {
    this.outputShape = [rows, words];
    this.dispatchLayout = webgpu_util.flatDispatchLayout(this.outputShape);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, this.outputShape, this.workgroupSize);
  }

  getUserCode(): string {
    return `
${PCG_WGSL}
${KEEP_WGSL}
fn main(index : i32) {
  if (index >= uniforms.size) { return; }
  let row = index / uniforms.W;
  let col0 = (index % uniforms.W) * 32;
  var word = 0u;
  for (var i = 0; i < 32; i++) {
    let col = col0 + i;
    if (col < uniforms.T && kept(uniforms.key, u32(row * uniforms.T + col), uniforms.threshold)) {
      word = word | (1u << u32(i));
    }
  }
  setOutputAtIndexI32(index, bitcast<i32>(word));
}`;
  }
}

function run(kernel: Kernel, s: Shape, inputs: tf.Tensor[], bits: tf.Tensor | null): tf.Tensor {
  const backend = tf.backend() as WebGPUBackend;
  const program = new FusedAttentionProgram(kernel, s);
  const all = program.variableNames.includes("Bits") ? [...inputs, bits!] : inputs;
  const info = backend.runWebGPUProgram(program, all, "float32", uniformData(ATTENTION_UNIFORMS, s));
  return tf.engine().makeTensorFromTensorInfo(info);
}

function dropoutBits(s: Shape, site: DropoutSite): tf.Tensor {
  const backend = tf.backend() as WebGPUBackend;
  const program = new DropoutBitsProgram(s.B * s.H * s.T, words(s.T));
  const info = backend.runWebGPUProgram(program, [], "int32", uniformData(BITS_UNIFORMS, { s, site }));
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** Dropout on the attention probabilities: drop probability and the site seed of `dropoutGpu`. */
export interface ProbsDropout {
  rate: number;
  seed: number;
}

/**
 * Whether {@link fusedAttention} takes a width `D` in `heads` heads: a head size that is a
 * multiple of 4.
 *
 * @example
 * ```ts
 * import { fusedAttentionFits } from "./fused_attention.ts";
 * if (!fusedAttentionFits(768, 12) || fusedAttentionFits(30, 5)) throw new Error("fits");
 * ```
 */
export function fusedAttentionFits(D: number, heads: number): boolean {
  return D % heads === 0 && (D / heads) % 4 === 0;
}

/**
 * Multi-head attention context `[B, T, H * dh]` from `q`, `k`, `v` in the same layout, an
 * additive key mask `[B, 1, 1, T]` (0 or -1e9) and optional dropout on the probabilities, on
 * WebGPU; gradients flow to `q`, `k` and `v`. The head size must be a multiple of 4
 * ({@link fusedAttentionFits}).
 *
 * @example
 * ```ts ignore
 * const ctx = fusedAttention(q, k, v, heads, keyMask, { rate: 0.1, seed });
 * ```
 */
export function fusedAttention(
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  heads: number,
  keyMask: tf.Tensor,
  drop: ProbsDropout | null,
): tf.Tensor3D {
  const [B, T, D] = q.shape;
  const dh = D / heads;
  if (!fusedAttentionFits(D, heads)) throw new Error(`fused attention reads heads as vec4: head size ${dh}`);
  const s: Shape = {
    B,
    T,
    H: heads,
    dh,
    scale: 1 / Math.sqrt(dh),
    drop: drop && drop.rate > 0 ? dropoutSite(drop.rate, drop.seed) : null,
  };
  const f = tf.customGrad((...args) => {
    const [qt, kt, vt] = args as tf.Tensor[];
    const mask = keyMask.reshape([B * T]);
    const bits = s.drop ? dropoutBits(s, s.drop) : null;
    const lse = run("lse", s, [qt, kt, mask], null);
    const out = run("out", s, [qt, kt, vt, mask, lse], bits);
    // The forward's intermediates are disposed before the backward runs: keep them as saved.
    (args[3] as unknown as (ts: tf.Tensor[]) => void)([qt, kt, vt, out, lse, mask, ...(bits ? [bits] : [])]);
    return {
      value: out,
      gradFunc: (dy, saved) => {
        const [qs, ks, vs, os, ls, mask, bits = null] = saved;
        const dOut = dy as tf.Tensor;
        const delta = run("delta", s, [os, dOut], null);
        return [
          run("dq", s, [qs, ks, vs, mask, ls, dOut, delta], bits),
          run("dk", s, [qs, ks, vs, mask, ls, dOut, delta], bits),
          run("dv", s, [qs, ks, mask, ls, dOut], bits),
        ];
      },
    };
  });
  return f(q, k, v) as tf.Tensor3D;
}
