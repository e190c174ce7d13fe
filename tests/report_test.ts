import assert from "node:assert/strict";
import puppeteer from "puppeteer-core";
import { analyze, type AnalyzeOptions, majorityFloor } from "../eval/compare.ts";
import type { MetricRow, ReportTask, RetrievalRow } from "../eval/contracts.ts";
import { markdown } from "../eval/report.ts";
import { html } from "../eval/report_html.ts";
import type { CurvePoint } from "../eval/plots.ts";
import { chromiumPath, INSTALL_HINT } from "../platform/chromium.ts";

const METHODS = ["full", "frozen", "gradual-unfreezing", "graddrop"];
const TIERS = ["high", "mid", "low"];
const lang = (l: number) => `x${String(l).padStart(3, "0")}`;

/** A full experiment: 120 zero-shot languages, 3 seeds, every optional datum the report can show. */
function experiment(languages = 120) {
  const rows: MetricRow[] = [];
  for (const [k, method] of METHODS.entries()) {
    for (const seed of [1, 2, 3]) {
      rows.push({ method, seed, language: "eng", split: "source", accuracy: 0.85 + 0.01 * k, n: 204 });
      for (let l = 0; l < languages; l++) {
        const accuracy = 0.3 + 0.4 * ((l * 13) % 17) / 17 + 0.01 * k + 0.005 * ((seed * l) % 3);
        rows.push({
          method,
          seed,
          language: lang(l),
          split: "test",
          accuracy,
          n: 204,
          retrieval: 0.2 + 0.001 * l,
          pred_share: method === "frozen" && l < 5 ? [0.9, 0.1] : [0.5, 0.5],
        });
      }
    }
  }
  rows.push(...majorityFloor([0, 1, 1], [{ language: lang(0), split: "test", gold: [1, 0, 1, 1] }]));
  const task: ReportTask = {
    name: "synthetic",
    labels: ["a", "b"],
    train_languages: ["eng"],
    languages: Object.fromEntries([
      ["eng", { script: "Latn", tier: "high", pretrain_tokens: 1e6 }],
      ...Array.from({ length: languages }, (_, l) => [lang(l), {
        script: ["Latn", "Cyrl", "Arab", "Deva"][l % 4],
        tier: TIERS[l % 3],
        // Tokens unknown for a few languages: they must read n/a, not 0.
        pretrain_tokens: l % 10 === 7 ? null : 1000 * (1 + l),
        pretrain_share: 0.001 * (1 + l),
        fertility: 1 + (l % 5) / 10,
      }]),
    ]),
    warnings: ["the corpora given are not the ones the checkpoint was pretrained on"],
    contamination: {
      exact_share: 0,
      ngram8_share: 0.0002,
      items: 204 * languages,
      per_language: Object.fromEntries(
        Array.from({ length: 3 }, (_, l) => [lang(l), { items: 204, exact: 0, ngram8: 0.01 * l }]),
      ),
    },
  };
  const checkpointRetrieval: RetrievalRow[] = Array.from(
    { length: languages },
    (_, l) => ({ language: lang(l), retrieval: 0.4 + 0.001 * l, tier: TIERS[l % 3] }),
  );
  const curves: CurvePoint[] = METHODS.flatMap((method) =>
    [1, 2, 3].flatMap((seed) =>
      Array.from({ length: 10 }, (_, step) => ({ method, seed, step, loss: 2 / (1 + step) }))
    )
  );
  const options: AnalyzeOptions = {
    pairs: "all",
    resamples: 300,
    seed: 0,
    primary: [
      { a: "graddrop", b: "full", metric: "accuracy" },
      { a: "graddrop", b: "gradual-unfreezing", metric: "accuracy" },
    ],
    task,
    checkpointRetrieval,
    devCurves: METHODS.flatMap((method) =>
      [1, 2, 3].flatMap((seed) =>
        [1, 2, 3].map((epoch) => ({ method, seed, epoch, step: 22 * epoch, accuracy: 0.3 + 0.1 * epoch }))
      )
    ),
    recipe: {
      pipeline: "recipe",
      split: "English dev",
      grid: { epochs: [3, 6], lr: [0.001, 0.003] },
      chosen: { full: { epochs: 6, lr: 0.001 }, graddrop: { epochs: 6, lr: 0.003 } },
    },
    references: [
      { label: "n-gram MLP (SIB-200 paper)", english: 59.9 },
      { label: "XLM-R base (SIB-200 paper)", english: 90.0 },
      { label: "XLM-R large (SIB-200 paper)", english: 92.1, zero_shot: 69.1 },
    ],
  };
  return { rows, task, options, curves };
}

const tableCount = (md: string) => md.split("\n").filter((l) => /^\|(---\|)+$/.test(l)).length;

Deno.test("report.md: the answer first, how to read last, every optional section when its data is there", () => {
  const { rows, options } = experiment();
  const md = markdown(analyze(rows, options), "Synthetic", ["Task: synthetic."]);
  for (
    const s of [
      "The comparisons this pipeline was declared to make (the primary family; Holm over these 2 alone):",
      "- **graddrop − full**, zero-shot accuracy: +3.0 points, 95% CI [",
      "**Undecided:** 3 seeds cannot reach p_Holm < 0.05 with Holm over 2 primary tests, whatever the data.",
      "> **Warning:** the corpora given are not the ones the checkpoint was pretrained on",
      "word 8-gram overlap 0.02%",
      "<summary>Contamination per language</summary>",
      "## Methods",
      "## Recipe",
      "Chosen by the `recipe` pipeline on English dev alone (never on test), from the grid epochs ∈ {3, 6} × lr ∈ {0.001, 0.003}. Chosen per method: full: epochs 6, lr 0.001; graddrop: epochs 6, lr 0.003.",
      "## Primary and control comparisons in detail",
      "The primary pairs on the other metrics (exploratory family):",
      "## Forgetting: cross-lingual retrieval kept",
      "## What the classifiers predict",
      "| frozen | **5 of 120** |",
      "## Exploratory comparisons",
      "the primary family holds 2 tests with 3 seeds (smallest p 0.250): **no p_Holm can fall below 0.05, whatever the data**",
      "Student t-interval over the per-seed mean gains",
      "What this design cannot show.",
      "| pretrained checkpoint |",
      "## Beside published figures",
      "| XLM-R large (SIB-200 paper) | 92.1 | 69.1 | literature |",
      "| n-gram MLP (SIB-200 paper) | 59.9 | n/a | literature |",
      "Mean gain over full by resource tier",
      "| deterministic |",
      "<!-- figure:dev -->",
    ]
  ) assert.ok(md.includes(s), `report.md lacks: ${s}`);
  const at = (s: string) => md.indexOf(s);
  assert.ok(at("**graddrop − full**") < at("## Methods"), "the verdicts come first");
  assert.ok(at("## Methods") < at("<!-- figure:methods -->"));
  assert.ok(at("<!-- figure:methods -->") < at("| method | kind |"), "the main plot, then the table");
  assert.ok(at("<!-- figure:methods -->") < at("## Exploratory comparisons"));
  assert.ok(at("## How to read this") > at("## Training"), "how to read is last");
  assert.ok(
    !md.includes("With 3 seeds") && !md.includes("10 distinct resamples"),
    "no hard-coded seed story",
  );
  assert.ok(!/(^|[^\d])0\.0%/m.test(md), "overlaps print two decimals, never 0.0%");
  assert.match(md, /\| graddrop \| fine-tuned \| 3 \| \d/, "a row per method");
  assert.match(md, /\| x007 \| Deva \| mid \| n\/a \|/, "unknown pretraining tokens read n/a");
  assert.match(
    md,
    /\| method \| pretraining tokens \| pretraining share \| fertility \|\n/,
    "unrecorded covariates left out",
  );
  assert.match(md, /\| graddrop \| [+-]?\d\.\d\d \(108\/120\) p_H /, "tokens known for 108 of 120 languages");
  assert.ok(!/rho[^|]*0\.00 \(0\//.test(md), "never rho 0 for a missing covariate");
  // Retrieval kept: fine-tuned 0.2 + 0.001 l against the checkpoint's 0.4 + 0.001 l is -20 points.
  assert.match(md, /\| full \| 25\.9 \| \d+\.\d% \| \[[\d.]+, [\d.]+\] \| -20\.0 \| 3 \| 120 \|/);
  const head = md.split("\n").find((l) => l.startsWith("| method | kind |"))!;
  assert.ok(!head.includes("eng macro-F1"), `no source F1 in any row, so no such column: ${head}`);
  assert.ok(head.includes("zero-shot macro-F1"), "the floor has zero-shot F1");
});

Deno.test("report.md: optional sections are absent without their data; contamination above 0 warns", () => {
  const { rows } = experiment(6);
  const plain = markdown(
    analyze(rows.map(({ retrieval: _, ...r }) => r), { pairs: "all", resamples: 200, seed: 0 }),
    "Plain",
    [],
  );
  for (
    const s of [
      "contamination",
      "retrieval",
      "published figures",
      "resource tier",
      "Covariates from the task",
    ]
  ) {
    assert.ok(!plain.toLowerCase().includes(s.toLowerCase()), `unexpected section: ${s}`);
  }
  const { options } = experiment(6);
  options.task!.contamination!.exact_share = 0.05;
  const warned = markdown(analyze(rows, options), "Warned", []);
  assert.match(warned, /> \*\*Warning: 5\.00% of 1224 test items occur verbatim/);
});

Deno.test("report.md: labels cannot break a table or inject HTML", () => {
  const rows = [1, 2].flatMap((seed) =>
    ["a|b", "<script>x</script>"].map((method) => ({
      method,
      seed,
      language: "fra",
      split: "test" as const,
      accuracy: 0.5,
    }))
  );
  const md = markdown(analyze(rows, { pairs: "all", resamples: 200, seed: 0 }), "T", []);
  assert.ok(md.includes("a\\|b") && md.includes("&lt;script&gt;") && !md.includes("<script>"));
});

async function openInChromium(file: string) {
  const bin = chromiumPath();
  if (!bin) {
    throw new Error(
      `Chromium not found (the report test needs it): ${INSTALL_HINT}, or run 'deno task setup --for-tests' as root`,
    );
  }
  const browser = await puppeteer.launch({
    executablePath: bin,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 800 });
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`uncaught: ${e}`));
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
    await page.goto(`file://${file}`, { waitUntil: "load" });
    // A string, so this file needs no DOM typings: it runs in the page.
    const dom = await page.evaluate(`({
      tables: document.querySelectorAll("table").length,
      svgs: document.querySelectorAll("svg").length,
      pre: document.querySelectorAll("pre").length,
      headings: [...document.querySelectorAll("h2")].map((h) => h.textContent),
      figures: [...document.querySelectorAll("figure")].map((f) => f.textContent),
      firstScreen: [...document.querySelectorAll("li, p")]
        .filter((e) => e.getBoundingClientRect().bottom <= window.innerHeight).map((e) => e.textContent),
      tops: {
        figure: document.querySelector("figure").getBoundingClientRect().top,
        table: [...document.querySelectorAll("table")].find((t) => [...t.querySelectorAll("th")].slice(0, 2).map((h) => h.textContent).join() === "method,kind")
          .getBoundingClientRect().top,
      },
      height: window.innerHeight,
    })`) as {
      tables: number;
      svgs: number;
      pre: number;
      headings: string[];
      figures: string[];
      firstScreen: string[];
      tops: Record<string, number>;
      height: number;
    };
    return { dom, problems };
  } finally {
    await browser.close();
  }
}

Deno.test({
  name:
    "report.html in headless Chromium: primary verdicts on the first screen, real tables, five plots, no errors",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { rows, options, curves } = experiment();
    const a = analyze(rows, options);
    const md = markdown(a, "Synthetic", ["Task: synthetic."]);
    const page = await html(a, "Synthetic", md, curves);
    assert.ok(!page.includes("<pre"), "tables are HTML tables, not Markdown in a <pre>");
    const dir = Deno.makeTempDirSync({ prefix: "graddrop-report-" });
    try {
      Deno.writeTextFileSync(`${dir}/report.html`, page);
      const { dom, problems } = await openInChromium(`${dir}/report.html`);
      assert.deepEqual(problems, []);
      assert.equal(dom.tables, tableCount(md));
      assert.ok(dom.tables >= 10, `${dom.tables} tables`);
      assert.equal(dom.pre, 0);
      assert.equal(dom.figures.length, 5);
      assert.ok(dom.svgs >= 5, `${dom.svgs} svgs`);
      // The first screen (1280 × 800) answers: each primary comparison's gain, interval, p_Holm and verdict.
      for (const pair of ["graddrop − full", "graddrop − gradual-unfreezing"]) {
        const line = dom.firstScreen.find((t) => t.startsWith(pair));
        assert.ok(line, `the verdict on ${pair} is on the first screen: ${dom.firstScreen.join(" / ")}`);
        assert.match(line, /points, 95% CI \[[^\]]+\], p_Holm \d\.\d{3} .*(better|Undecided|No significant)/);
      }
      assert.ok(
        dom.tops.figure < dom.height,
        `the main plot starts on the first screen (${dom.tops.figure}px)`,
      );
      assert.ok(
        dom.tops.table < dom.height,
        `the methods table starts on the first screen (${dom.tops.table}px)`,
      );
      for (
        const h of [
          "How to read this",
          "Exploratory comparisons",
          "Forgetting: cross-lingual retrieval kept",
          "What the classifiers predict",
          "Training",
        ]
      ) {
        assert.ok(dom.headings.some((x) => x.startsWith(h)), `heading ${h}`);
      }
      const languages = dom.figures[1];
      for (let l = 0; l < 120; l++) assert.ok(languages.includes(lang(l)), `language ${lang(l)} is labelled`);
      for (const t of TIERS) assert.ok(languages.includes(t), `panel for tier ${t}`);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("analysis/compare stage on synthetic inputs: floor, retrieval reference, baselines by their own method, dev curves, primary, recipe, warnings", async () => {
  const { stage } = await import("../stages/analysis_compare.ts");
  const { buildShard, writeShard } = await import("../data/shards.ts");
  const dir = Deno.makeTempDirSync({ prefix: "graddrop-stage-" });
  try {
    const languages = ["eng", "fra", "swh"];
    const shard = (name: string, rows: [number, number][]) =>
      writeShard(
        `${dir}/task`,
        buildShard(name, rows.map(([label, lang]) => ({ ids: [0, 5, 2], label, lang })), 4, 1, languages, [
          "a",
          "b",
        ]),
      );
    Deno.mkdirSync(`${dir}/task`);
    await shard("train", [[1, 0], [1, 0], [0, 0]]);
    await shard("dev", [[1, 0], [0, 0]]);
    await shard("test", [[1, 1], [0, 1], [1, 1], [1, 2], [0, 2]]);
    Deno.writeTextFileSync(
      `${dir}/task/task.json`,
      JSON.stringify({
        name: "tiny",
        labels: ["a", "b"],
        train_languages: ["eng"],
        test_languages: ["fra", "swh"],
        languages: {
          eng: {
            examples: { train: 3, dev: 2, test: 0 },
            script: "Latn",
            tier: "high",
            pretrain_tokens: 5000,
          },
          fra: {
            examples: { train: 0, dev: 0, test: 3 },
            script: "Latn",
            tier: "high",
            pretrain_tokens: 3000,
          },
          swh: {
            examples: { train: 0, dev: 0, test: 2 },
            script: "Latn",
            tier: "low",
            pretrain_tokens: null,
          },
        },
        contamination: { exact_share: 0, ngram8_share: 0, items: 5, per_language: {} },
        warnings: ["the checkpoint has no provenance naming its corpus"],
      }),
    );
    const inputs = [{
      stage: "task",
      type: "data/udhr-articles",
      id: "task",
      matrix: {},
      params: {},
      dir: `${dir}/task`,
    }];
    for (const method of ["full", "graddrop"]) {
      for (const seed of [1, 2]) {
        const id = `evaluate[method=${method},seed=${seed}]`;
        Deno.mkdirSync(`${dir}/${id}`);
        Deno.writeTextFileSync(
          `${dir}/${id}/metrics.json`,
          JSON.stringify({
            rows: languages.map((language) => ({
              language,
              split: language === "eng" ? "source" : "test",
              scored_on: language === "eng" ? "dev" : "test",
              n: language === "fra" ? 3 : 2,
              accuracy: method === "full" ? 0.5 : 0.6,
              f1: 0.5,
              retrieval: 0.3,
            })),
          }),
        );
        inputs.push({
          stage: "evaluate",
          type: "eval/classify",
          id,
          matrix: { method, seed },
          params: {},
          dir: `${dir}/${id}`,
        });
        const ft = `finetune[method=${method},seed=${seed}]`;
        Deno.mkdirSync(`${dir}/${ft}`);
        Deno.writeTextFileSync(
          `${dir}/${ft}/train_log.jsonl`,
          '{"step":0,"loss":1}\n{"step":1,"loss":0.5}\n',
        );
        // Both shapes of dev_metrics.json: today's dev_accuracy per epoch, and dev_curve.
        Deno.writeTextFileSync(
          `${dir}/${ft}/dev_metrics.json`,
          JSON.stringify(
            method === "full"
              ? { dev_accuracy: [0.3, 0.4] }
              : { dev_curve: [{ epoch: 1, step: 4, accuracy: 0.35 }, { epoch: 2, step: 8, accuracy: 0.5 }] },
          ),
        );
        inputs.push({
          stage: "finetune",
          type: "train/finetune",
          id: ft,
          matrix: { method, seed },
          params: {},
          dir: `${dir}/${ft}`,
        });
      }
    }
    for (
      const [type, method] of [["eval/char-ngram", "char-ngram"], ["eval/bag-of-subwords", "bag-of-subwords"]]
    ) {
      for (const seed of [1, 2]) {
        const id = `${method}[seed=${seed}]`;
        Deno.mkdirSync(`${dir}/${id}`);
        Deno.writeTextFileSync(
          `${dir}/${id}/metrics.json`,
          JSON.stringify({
            method,
            rows: languages.map((language) => ({
              language,
              split: language === "eng" ? "source" : "test",
              n: language === "fra" ? 3 : 2,
              accuracy: 0.4,
              f1: 0.3,
              pred_share: [0.8, 0.2],
            })),
          }),
        );
        inputs.push({ stage: method, type, id, matrix: { seed }, params: {}, dir: `${dir}/${id}` });
      }
    }
    Deno.mkdirSync(`${dir}/retrieval`);
    Deno.writeTextFileSync(
      `${dir}/retrieval/metrics.json`,
      JSON.stringify({
        rows: [{ language: "fra", retrieval: 0.6 }, { language: "swh", retrieval: 0.3, tier: "low" }],
      }),
    );
    inputs.push({
      stage: "retrieval",
      type: "eval/retrieval",
      id: "retrieval",
      matrix: {},
      params: {},
      dir: `${dir}/retrieval`,
    });
    Deno.mkdirSync(`${dir}/out`);
    const params = stage.schema.parse({
      resamples: 200,
      primary: ["graddrop:full", { a: "graddrop", b: "bag-of-subwords" }],
      recipe: {
        pipeline: "recipe",
        split: "eng dev",
        grid: { lr: [0.001, 0.003] },
        chosen: { full: { lr: 0.003 } },
      },
      references: [{ label: "XLM-R large", english: 92.1, zero_shot: 69.1 }],
    });
    await stage.run({
      id: "analysis",
      params,
      matrix: {},
      inputs,
      out: `${dir}/out`,
      work: `${dir}/work`,
      log: () => {},
      progress: () => {},
    });
    const metrics = JSON.parse(Deno.readTextFileSync(`${dir}/out/metrics.json`)).rows as MetricRow[];
    const floor = metrics.filter((r) => r.method === "majority");
    // Majority label 1 (two of three training rows): fra 2/3 on test, swh 1/2, eng 1/2 on dev.
    assert.deepEqual(floor.map((r) => [r.language, r.accuracy, r.n]).sort(), [["eng", 0.5, 2], [
      "fra",
      2 / 3,
      3,
    ], [
      "swh",
      0.5,
      2,
    ]]);
    const a = JSON.parse(Deno.readTextFileSync(`${dir}/out/analysis.json`));
    type C = { a: string; b: string; family: string; metric: string; p: number };
    const primary = a.comparisons.filter((c: C) => c.family === "primary");
    assert.deepEqual(primary.map((c: C) => [c.a, c.b, c.metric]), [
      ["graddrop", "full", "accuracy"],
      ["graddrop", "bag-of-subwords", "accuracy"],
    ]);
    assert.equal(primary[0].p, 0.5, "two seeds: 2/2^2");
    assert.ok(
      a.comparisons.some((c: C) => c.metric === "retrieval_kept" && c.a === "graddrop" && c.b === "full"),
    );
    assert.ok(a.comparisons.some((c: C) => c.metric === "f1" && c.a === "graddrop" && c.b === "full"));
    const kinds = Object.fromEntries(
      a.summary.map((s: { method: string; kind: string }) => [s.method, s.kind]),
    );
    assert.deepEqual(kinds, {
      full: "fine-tuned",
      graddrop: "fine-tuned",
      "char-ngram": "non-neural",
      "bag-of-subwords": "non-neural",
      majority: "floor",
    });
    assert.deepEqual(
      a.dev_curves.map((p: { method: string; epoch: number; step: number | null; accuracy: number }) => [
        p.method,
        p.epoch,
        p.step,
        Math.round(p.accuracy),
      ]),
      [["full", 1, null, 30], ["full", 2, null, 40], ["graddrop", 1, 4, 35], ["graddrop", 2, 8, 50]],
    );
    assert.deepEqual(
      a.summary.find((s: { method: string }) => s.method === "bag-of-subwords").collapsed,
      ["eng", "fra", "swh"],
      "80% one label: flagged, source language included",
    );
    assert.equal(a.retrieval.checkpoint.languages, 2);
    const md = Deno.readTextFileSync(`${dir}/out/report.md`);
    assert.match(
      md,
      /no test item occurs verbatim in the pretraining corpus \(5 items\); word 8-gram overlap 0\.00%/,
    );
    assert.match(md, /> \*\*Warning:\*\* the checkpoint has no provenance naming its corpus/);
    assert.match(md, /## Recipe\n\nChosen by the `recipe` pipeline on eng dev alone/);
    assert.match(md, /\| bag-of-subwords \| non-neural baseline \| 2 \|/);
    assert.match(md, /\| XLM-R large \| 92\.1 \| 69\.1 \| literature \|/);
    assert.match(md, /\| swh \| Latn \| low \| n\/a \|/);
    const page = Deno.readTextFileSync(`${dir}/out/report.html`);
    assert.equal((page.match(/<svg/g) ?? []).length, 5);
    assert.ok(page.includes("<table>"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
