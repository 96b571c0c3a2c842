// Parse Mermaid blocks with the real Mermaid parser: JSON list of sources on stdin, one JSON
// result per block on stdout ({ok, error}). Used by tests/integration/test_mermaid.py.
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
// mermaid reads these at import; jsdom has them on window
for (const key of ["navigator", "Element", "HTMLElement", "SVGElement", "DOMParser"]) {
  if (!(key in globalThis)) globalThis[key] = dom.window[key];
}
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const source of JSON.parse(input)) {
  try {
    await mermaid.parse(source);
    results.push({ ok: true });
  } catch (err) {
    results.push({ ok: false, error: String(err?.message ?? err) });
  }
}
process.stdout.write(JSON.stringify(results));
