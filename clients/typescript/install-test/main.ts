// The packed package as a user gets it: .ci/typescript.sh copies this file
// into fresh projects (commonjs/: a NestJS-style CommonJS build;
// nodenext-commonjs/: `module: nodenext` without "type": "module", as new
// NestJS projects are; esm/: an ES module project), installs the tarball
// `npm pack` made, type-checks with `tsc --strict` and runs the result
// against a live semsearch (SEMSEARCH_URL, SEMSEARCH_API_KEY).
//
// The type check is half the test: the @ts-expect-error line fails the
// build when the package's types stop reaching the project (everything
// `any`), and lib has no DOM, as in a Node service.
import { Semsearch, SemsearchError, type SearchRequest, type SearchResponse } from "@semsearch/client";

const url = process.env.SEMSEARCH_URL;
if (!url) {
  throw new Error("set SEMSEARCH_URL");
}
const project = process.argv[2] ?? "install-test";
const semsearch = new Semsearch({ baseUrl: url, apiKey: process.env.SEMSEARCH_API_KEY || undefined });

// @ts-expect-error a search needs a vector, a text or an id
const incomplete: SearchRequest = { k: 3 };

async function main(): Promise<void> {
  const stats = await semsearch.stats();
  const vector = Array.from({ length: stats.dimension }, (_, i) => Math.sin(i + 1));
  const found: SearchResponse = await semsearch.search({ vector, k: 3 });
  const first = found.results[0];
  if (found.results.length !== 3 || first === undefined) {
    throw new Error(`expected 3 results, got ${JSON.stringify(found.results)}`);
  }
  const similar = await semsearch.moreLikeThis(first.id, { k: 3 });
  if (similar.results.length === 0 || similar.results.some((r) => r.id === first.id)) {
    throw new Error(`"more like this" should leave ${first.id} out: ${JSON.stringify(similar.results)}`);
  }
  let missing: unknown;
  try {
    await semsearch.document("no-such-document");
  } catch (e) {
    missing = e;
  }
  if (!(missing instanceof SemsearchError) || missing.status !== 404) {
    throw new Error(`expected a 404 SemsearchError, got ${String(missing)}`);
  }
  console.log(
    `${project}: ${stats.documents} documents; top hit ${first.id}; ${similar.results.length} like it; ` +
      `unknown id -> SemsearchError ${missing.status} ${missing.code}; ${Object.keys(incomplete).length} key`,
  );
}

main().catch((e: unknown) => {
  console.error(`${project}:`, e);
  process.exit(1);
});
