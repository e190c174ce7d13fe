import assert from "node:assert/strict";
import { cli, statuses, tempDir } from "./helpers.ts";
import { METHODS } from "../train/methods.ts";

const CORPUS = `
      corpus:
        uses: corpus/udhr
        with: {languages: [eng, fra, deu, spa, ita, por, nld, rus], hold_out_articles: [1, 9, 15, 20, 25, 29]}
      tokenizer:
        uses: tokenizer/train
        needs: [corpus]
        with: {vocab_size: 500}`;

function project(yaml: string): { dir: string; file: string; home: string } {
  const dir = tempDir();
  Deno.writeTextFileSync(`${dir}/pipelines.yaml`, yaml);
  return { dir, file: `${dir}/pipelines.yaml`, home: `${dir}/home` };
}

Deno.test("end to end on the software adapter: every method through the stages, ONNX eval, report", async () => {
  const { dir, file, home } = project(`pipelines:
  tiny:
    stages:${CORPUS}
      pretrain:
        uses: model/pretrain
        needs: [corpus, tokenizer]
        with: {config: tiny, steps: 12, batch_size: 16, max_length: 32, backend: webgpu}
      task:
        uses: data/udhr-articles
        needs: [corpus, tokenizer]
        with: {train_languages: [eng, fra], eval_languages: [deu_1996, nld, ita, por_PT], max_length: 32}
      finetune:
        uses: train/finetune
        needs: [pretrain, task]
        matrix: {method: [${METHODS.join(", ")}], seed: [1]}
        with: {epochs: 2, batch_size: 32, unfreeze_every: 2, log_kept_every: 1, backend: webgpu}
      shallow:
        uses: train/finetune
        needs: [pretrain, task]
        with: {keep_layers: 1, head_fit_steps: 5, epochs: 1, batch_size: 32, backend: webgpu}
      shallow_export:
        uses: model/export-onnx
        needs: [shallow]
      shallow_evaluate:
        uses: eval/classify
        needs: [shallow_export, task]
      export:
        uses: model/export-onnx
        foreach: finetune
      evaluate:
        uses: eval/classify
        foreach: export
        needs: [task]
      bow:
        uses: eval/bag-of-subwords
        needs: [task]
      probe:
        uses: eval/layer-probe
        needs: [pretrain, task]
        with: {epochs: 2, backend: webgpu}
      probe_random:
        uses: eval/layer-probe
        needs: [pretrain, task]
        with: {epochs: 2, backend: webgpu, init: random}
      analysis:
        uses: analysis/compare
        needs: [evaluate, bow, finetune, task]
        with: {resamples: 200}
`);
  const r = await cli(["run", "--config", file, "--json", "--jobs", "2"], home);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  assert.ok(Object.values(statuses(r)).every((s) => s === "ran"));
  const probeKey = r.json!.stages.find((s) => s.id === "probe")!.key;
  const probe = JSON.parse(Deno.readTextFileSync(`${home}/store/${probeKey}/out/metrics.json`));
  assert.deepEqual(
    probe.layers.map((l: { layer: number }) => l.layer),
    [0, 1, 2],
    "the tiny config's 2 layers and the embeddings",
  );
  // This task tests only its zero-shot languages: the probe scores source dev and has no test.
  assert.deepEqual(probe.n, { train: 77, dev: 20, test: 0 });
  for (const l of probe.layers) {
    assert.ok(l.dev_accuracy >= 0 && l.dev_accuracy <= 1 && l.l2_dev_accuracy.length === 5);
    assert.equal(l.test_accuracy, null);
  }
  // Same seed, same data, same fit: only the redrawn weights can make the control differ.
  const randomKey = r.json!.stages.find((s) => s.id === "probe_random")!.key;
  const random = JSON.parse(Deno.readTextFileSync(`${home}/store/${randomKey}/out/metrics.json`));
  assert.deepEqual([probe.init, random.init], ["checkpoint", "random"]);
  assert.notDeepEqual(random.layers, probe.layers, "the control probes other weights");
  // keep_layers: 1 fine-tunes, exports and evaluates a 1-layer encoder; layer 1 is gone.
  const shallowKey = r.json!.stages.find((s) => s.id === "shallow")!.key;
  const shallow = `${home}/store/${shallowKey}/out/checkpoint`;
  assert.equal(JSON.parse(Deno.readTextFileSync(`${shallow}/config.json`)).num_hidden_layers, 1);
  const { checkpointTensors } = await import("../model/checkpoint.ts");
  const names = [...(await checkpointTensors(shallow)).byName.keys()];
  assert.ok(names.some((n) => n.includes("encoder.layer.0.")) && !names.some((n) => n.includes("layer.1.")));
  assert.match(r.stderr, /\[shallow\] kept the bottom 1 of 2 layers/);
  // LP-FT: the head was fitted on the frozen encoder before fine-tuning, and its loss fell.
  const fit = JSON.parse(Deno.readTextFileSync(`${home}/store/${shallowKey}/out/dev_metrics.json`)).head_fit;
  assert.ok(fit.loss_last < fit.loss_first, JSON.stringify(fit));
  const shallowEval = r.json!.stages.find((s) => s.id === "shallow_evaluate")!.key;
  assert.ok(
    JSON.parse(Deno.readTextFileSync(`${home}/store/${shallowEval}/out/metrics.json`)).rows.length > 0,
  );
  const metrics = JSON.parse(Deno.readTextFileSync(`${dir}/results/tiny/metrics.json`));
  const methods = new Set(metrics.rows.map((x: { method: string }) => x.method));
  for (const m of [...METHODS, "bag-of-subwords", "majority"]) assert.ok(methods.has(m), `metrics has ${m}`);
  const langs = new Set(metrics.rows.map((x: { language: string }) => x.language));
  assert.ok(langs.has("nld") && langs.has("deu_1996") && langs.has("eng"));
  assert.ok(metrics.rows.every((x: { split: string }) => x.split === "source" || x.split === "test"));
  const html = Deno.readTextFileSync(`${dir}/results/tiny/report.html`);
  assert.equal((html.match(/<svg/g) ?? []).length, 5, "methods, languages, covariate, dev curves, loss");
  assert.match(Deno.readTextFileSync(`${dir}/results/tiny/report.md`), /\| graddrop \|/);
  assert.match(r.stderr, /trained on webgpu/);
  assert.match(
    r.stderr,
    /\[task\] contamination: 0\.00% of test paragraphs in the corpus/,
    "split by article",
  );
  assert.match(Deno.readTextFileSync(`${dir}/results/tiny/report.md`), /ontamination/);
  const again = await cli(["run", "--config", file, "--json"], home);
  assert.ok(Object.values(statuses(again)).every((s) => s === "cached"));
  // Outputs hold no timings or paths: a forced rerun with the same seed writes the same bytes,
  // so everything downstream stays cached.
  const forced = statuses(
    await cli(["run", "--config", file, "--json", "--force", "finetune[method=full,seed=1]"], home),
  );
  assert.equal(forced["finetune[method=full,seed=1]"], "ran");
  // One job on this 2-core machine: evaluation used to spin forever here (onnxruntime-web asked
  // for two threads it could not start under Deno).
  const one = await cli(
    [
      "run",
      "--config",
      file,
      "--json",
      "--jobs",
      "1",
      "--only",
      "evaluate[method=graddrop,seed=1]",
      "--force",
      "evaluate",
    ],
    home,
  );
  assert.equal(statuses(one)["evaluate[method=graddrop,seed=1]"], "ran", one.stderr);
  assert.equal(forced["export[method=full,seed=1]"], "cached");
  assert.equal(forced["evaluate[method=full,seed=1]"], "cached");
  assert.equal(forced.analysis, "cached");
});

Deno.test("pretraining resumes after SIGKILL from its last checkpoint, here or from a committed copy, and reproduces the curve", async () => {
  const yaml = `pipelines:
  p:
    stages:${CORPUS}
      pretrain:
        uses: model/pretrain
        needs: [corpus, tokenizer]
        with: {config: tiny, steps: 24, batch_size: 8, max_length: 32, checkpoint_every: 4, backend: cpu}
`;
  const whole = project(yaml);
  assert.equal((await cli(["run", "--config", whole.file], whole.home)).code, 0);
  const killed = project(yaml);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${new URL("../main.ts", import.meta.url).pathname}`, "run", "--config", killed.file],
    env: { GRADDROP_HOME: killed.home },
    stdout: "null",
    stderr: "null",
  }).spawn();
  const deadline = Date.now() + 120_000;
  let state: string | undefined;
  while (Date.now() < deadline && !state) {
    await new Promise((r) => setTimeout(r, 200));
    try {
      for (const e of Deno.readDirSync(`${killed.home}/work`)) {
        const s = JSON.parse(Deno.readTextFileSync(`${killed.home}/work/${e.name}/checkpoint/state.json`));
        if (s.step >= 8) state = e.name;
      }
    } catch {
      // Not there yet.
    }
  }
  assert.ok(state, "a resume checkpoint appeared");
  child.kill("SIGKILL");
  await child.status;
  const pkill = new Deno.Command("pkill", { args: ["-9", "-f", `${killed.home}/tmp`] }).outputSync();
  assert.ok(pkill.code === 0 || pkill.code === 1);
  // What a session that ends mid-run commits, for the next machine, whose cache is empty.
  const committed = `${killed.dir}/models/resume`;
  const exported = await cli(
    [
      "export",
      "p",
      "--config",
      killed.file,
      "--id",
      "pretrain",
      "--path",
      "checkpoint",
      "--to",
      committed,
      "--work",
    ],
    killed.home,
  );
  assert.equal(exported.code, 0, exported.stderr);
  const r = await cli(["run", "--config", killed.file, "--json"], killed.home);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(statuses(r), { corpus: "cached", tokenizer: "cached", pretrain: "ran" });
  assert.match(r.stderr, /resumed from step (8|12|16|20)/);
  const curve = (d: string) => Deno.readTextFileSync(`${d}/results/p/curve.jsonl`);
  assert.equal(curve(killed.dir), curve(whole.dir));
  const elsewhere = project(yaml.replace("backend: cpu}", `backend: cpu, resume_from: ${committed}}`));
  const picked = await cli(["run", "--config", elsewhere.file], elsewhere.home);
  assert.equal(picked.code, 0, picked.stderr);
  assert.match(picked.stderr, /resumed from step (8|12|16|20)/);
  assert.equal(curve(elsewhere.dir), curve(whole.dir));
  const wrong = project(yaml.replace("backend: cpu}", `backend: cpu, seed: 1, resume_from: ${committed}}`));
  const refused = await cli(["run", "--config", wrong.file], wrong.home);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /resume\/state\.json: field 'settings' is [0-9a-f]{64}, but this run's/);
});

Deno.test("data stages: xnli and pawsx from small files, with a resource-size CSV", async () => {
  const { dir, file, home } = project("");
  for (const lang of ["en", "de", "sw"]) {
    Deno.mkdirSync(`${dir}/xnli/${lang}`, { recursive: true });
    Deno.mkdirSync(`${dir}/pawsx/${lang}`, { recursive: true });
    for (const split of ["train", "dev", "test"]) {
      Deno.writeTextFileSync(
        `${dir}/xnli/${lang}/${split}.tsv`,
        "premise\thypothesis\tlabel\nA man sleeps.\tA person rests.\tentailment\nIt rains.\tIt is dry.\tcontradiction\nShe reads.\tShe is tall.\tneutral\n",
      );
      Deno.writeTextFileSync(
        `${dir}/pawsx/${lang}/${split}.tsv`,
        "sentence1\tsentence2\tlabel\nA b c.\tC b a.\t0\nA b.\tA b.\t1\n",
      );
    }
  }
  Deno.writeTextFileSync(`${dir}/sizes.csv`, "language,size\nen,300.8\nde,66.6\nsw,1.6\n");
  Deno.writeTextFileSync(
    file,
    `pipelines:
  d:
    stages:${CORPUS}
      xnli:
        uses: data/xnli
        needs: [tokenizer]
        with: {path: ${dir}/xnli, resource_csv: ${dir}/sizes.csv}
      pawsx:
        uses: data/pawsx
        needs: [tokenizer]
        with: {path: ${dir}/pawsx, max_length: 16}
`,
  );
  const r = await cli(["run", "--config", file, "--json"], home);
  assert.equal(r.code, 0, r.stderr);
  const key = (id: string) => r.json!.stages.find((s) => s.id === id)!.key!;
  const xnli = JSON.parse(Deno.readTextFileSync(`${home}/store/${key("xnli")}/out/task.json`));
  assert.deepEqual(xnli.labels, ["entailment", "neutral", "contradiction"]);
  assert.deepEqual(xnli.train_languages, ["en"]);
  assert.equal(xnli.languages.sw.resource_size, 1.6);
  assert.equal(xnli.languages.en.examples.train, 3);
  assert.equal(xnli.languages.de.examples.test, 3);
  assert.ok(xnli.languages.de.fertility > 1);
  const pawsx = JSON.parse(Deno.readTextFileSync(`${home}/store/${key("pawsx")}/out/test.json`));
  assert.equal(pawsx.max_length, 16);
});

const SIB = new URL("../datasets/sib200", import.meta.url).pathname;

Deno.test({
  name: "data/sib200 stage on the vendored SIB-200 data",
  fn: async () => {
    const { file, home } = project("");
    Deno.writeTextFileSync(
      file,
      `pipelines:
  s:
    stages:${CORPUS}
      sib200:
        uses: data/sib200
        needs: [tokenizer]
        with: {path: ${SIB}, unlabelled_dev: true}
`,
    );
    const r = await cli(["run", "--config", file, "--json"], home);
    assert.equal(r.code, 0, r.stderr);
    const key = r.json!.stages.find((s) => s.id === "sib200")!.key!;
    const task = JSON.parse(Deno.readTextFileSync(`${home}/store/${key}/out/task.json`));
    assert.equal(task.labels.length, 7);
    assert.ok(task.test_languages.length >= 20);
    assert.equal(task.languages.eng_Latn.examples.train, 701);
    assert.ok(task.languages.eng_Latn.pretrain_share > 0, "eng_Latn maps to the UDHR's eng share");
    // unlabelled_dev: every language's dev sentences, with no label, and nowhere else.
    const { readShard } = await import("../data/shards.ts");
    const unlabelled = await readShard(`${home}/store/${key}/out`, "unlabelled");
    assert.equal(unlabelled.index.n, 24 * 99, "99 dev sentences in each of 24 languages");
    assert.ok(unlabelled.labels.every((l) => l === -1), "no label written");
    assert.equal(new Set(unlabelled.langs).size, 24);
    assert.equal(task.languages.fra_Latn.examples.dev, 0, "French dev is not a labelled split");
    // The covariates are those of the same task without the unlabelled text.
    const plain = await cli([
      "run",
      "--config",
      file,
      "--json",
      "--set",
      "stages.sib200.with.unlabelled_dev=false",
    ], home);
    assert.equal(plain.code, 0, plain.stderr);
    const plainKey = plain.json!.stages.find((s) => s.id === "sib200")!.key!;
    const without = JSON.parse(Deno.readTextFileSync(`${home}/store/${plainKey}/out/task.json`));
    assert.deepEqual(task, without, "task.json does not change with unlabelled_dev");
    const texts = Deno.readTextFileSync(`${home}/store/${key}/out/texts.jsonl`);
    assert.ok(!texts.includes('"split":"unlabelled"'), "texts.jsonl carries labelled splits only");
  },
});
