/**
 * Checkpoints as users bring them from the Hub: `roberta.` names or none, F16/BF16, shards
 * with an index, the Hub cache by model id, a classifier for another label count, and only
 * `pytorch_model.bin` (refused with the conversion); and XLM-R base's real shape, checked
 * from the headers without loading it.
 * @module
 */
import assert from "node:assert/strict";
import { namedConfig } from "../model/config.ts";
import { checkpointTensors, inspectCheckpoint, loadCheckpoint } from "../model/checkpoint.ts";
import { hubSnapshot } from "../model/hub.ts";
import { exactTensors, LAYOUTS, writeLayout, writeZeroCheckpoint } from "./user_checkpoint.ts";
import { useBackend } from "./gpu.ts";
import { tempDir } from "./helpers.ts";

Deno.test("every layout loads to the same F32 values; the odd ones are reported", async () => {
  await useBackend("cpu");
  const root = tempDir();
  const cfg = namedConfig("tiny", 60);
  const heads = { mlm: false, numLabels: 7 };
  const tensors = exactTensors(cfg, heads);
  for (const layout of LAYOUTS) {
    const withHead = layout === "classifier7" || layout === "classifier3";
    const stored = layout === "classifier3" ? exactTensors(cfg, { mlm: false, numLabels: 3 }) : tensors;
    const written = new Map([...stored].filter(([n]) => withHead || !n.startsWith("classifier.")));
    let path = await writeLayout(root, layout, cfg, written);
    if (layout === "hub") path = hubSnapshot(path, `${root}/hf/hub`)!;
    const { params, report } = await loadCheckpoint(path, heads, 1);
    const name = "roberta.encoder.layer.1.intermediate.dense.weight";
    assert.deepEqual(
      Array.from(await params.get(name)!.data()),
      Array.from(tensors.get(name)!.data),
      `${layout}: ${name} differs`,
    );
    if (layout === "classifier7") {
      assert.deepEqual(report.fresh, []);
      assert.deepEqual(
        Array.from(await params.get("classifier.out_proj.weight")!.data()),
        Array.from(tensors.get("classifier.out_proj.weight")!.data),
      );
    } else if (layout === "classifier3") {
      assert.deepEqual(report.replaced, [
        "classifier.out_proj.weight [3,32] -> [7,32]",
        "classifier.out_proj.bias [3] -> [7]",
      ]);
    } else assert.equal(report.fresh.length, 4, `${layout}: a new classifier`);
    assert.equal(report.prefix, layout === "bare" ? "none" : "roberta.");
    assert.equal(report.layout, layout === "sharded" ? "sharded" : "single");
    assert.deepEqual(report.dtypes, [layout === "f16" ? "F16" : layout === "bf16" ? "BF16" : "F32"]);
    for (const v of params.values()) v.dispose();
  }
  const bin = await writeLayout(root, "bin-only", cfg, tensors);
  await assert.rejects(
    checkpointTensors(bin),
    (e: Error) =>
      /only PyTorch weights \(pytorch_model\.bin\).*python3 -c "import torch; from safetensors\.torch import save_file/
        .test(e.message) && !e.message.includes("\n"),
  );
  Deno.removeSync(root, { recursive: true });
});

Deno.test("a sharded index naming a missing shard, or a snapshot refs/main does not hold, is one clear line", async () => {
  const root = tempDir();
  const cfg = namedConfig("tiny", 60);
  const dir = await writeLayout(root, "sharded", cfg, exactTensors(cfg, { mlm: false, numLabels: 0 }));
  Deno.removeSync(`${dir}/model-00002-of-00002.safetensors`);
  await assert.rejects(checkpointTensors(dir), /shard model-00002-of-00002\.safetensors is missing/);
  await writeLayout(root, "hub", cfg, exactTensors(cfg, { mlm: false, numLabels: 0 }));
  Deno.writeTextFileSync(`${root}/hf/hub/models--org--tiny/refs/main`, "feedbeef");
  assert.throws(() => hubSnapshot("org/tiny", `${root}/hf/hub`), /no snapshot feedbeef under snapshots/);
  assert.equal(hubSnapshot("org/absent", `${root}/hf/hub`), undefined);
  Deno.removeSync(root, { recursive: true });
});

Deno.test("XLM-R base's real shape as the Hub ships it (F16, 2 shards, MLM head) checks from headers alone", async () => {
  const dir = tempDir();
  const cfg = namedConfig("base", 250002);
  await writeZeroCheckpoint(dir, cfg);
  const { report } = await inspectCheckpoint(dir, { mlm: false, numLabels: 7 });
  assert.equal(report.layout, "sharded");
  assert.deepEqual(report.dtypes, ["F16"]);
  assert.equal(report.fresh.length, 4);
  assert.deepEqual(report.ignored, [
    "lm_head.bias",
    "lm_head.dense.bias",
    "lm_head.dense.weight",
    "lm_head.layer_norm.bias",
    "lm_head.layer_norm.weight",
  ]);
  const found = await checkpointTensors(dir);
  const embedding = found.byName.get("roberta.embeddings.word_embeddings.weight")!
    .tensors.get("roberta.embeddings.word_embeddings.weight")!;
  assert.deepEqual(embedding.shape, [250002, 768]);
  Deno.removeSync(dir, { recursive: true });
});
