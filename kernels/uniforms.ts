/**
 * A kernel's uniforms declared once: each field's name, WGSL type and how to read it from
 * the step's parameters. The WGSL declaration and the values tfjs uploads both come from the
 * same list, so they cannot drift apart.
 * @module
 */

/** One uniform field of a kernel whose parameters are `P`. */
export interface UniformField<P> {
  name: string;
  type: "u32" | "i32" | "f32";
  value: (p: P) => number;
}

/**
 * The fields as WGSL declares them inside a struct: `key : u32, scale : f32,`.
 *
 * @example
 * ```ts
 * import { wgslFields } from "./uniforms.ts";
 * const f = [{ name: "n", type: "u32" as const, value: (p: { n: number }) => p.n }];
 * if (wgslFields(f) !== "n : u32,") throw new Error(wgslFields(f));
 * ```
 */
export function wgslFields<P>(fields: UniformField<P>[]): string {
  return fields.map((f) => `${f.name} : ${f.type},`).join(" ");
}

const TFJS_TYPE = { u32: "uint32", i32: "int32", f32: "float32" } as const;

/** The values in tfjs-backend-webgpu's uniform format, in declaration order. */
export function uniformData<P>(
  fields: UniformField<P>[],
  p: P,
): { type: "uint32" | "int32" | "float32"; data: number[] }[] {
  return fields.map((f) => ({
    type: TFJS_TYPE[f.type],
    data: [f.type === "u32" ? f.value(p) >>> 0 : f.value(p)],
  }));
}
