// The client against a live semsearch holding the shared corpus
// (corpus-dev.jsonl), as .ci/typescript.sh starts it. Environment:
// SEMSEARCH_URL, SEMSEARCH_API_KEY (if the server wants one),
// SEMSEARCH_SHARED_DATA (the folder of corpus-dev.jsonl and queries-dev.jsonl).
// Exactness is checked against the shared ground truth, never a copied number.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { Semsearch, SemsearchError, type SearchResult } from "../src/index.js";

const url = process.env.SEMSEARCH_URL;
const apiKey = process.env.SEMSEARCH_API_KEY || undefined;
const data = process.env.SEMSEARCH_SHARED_DATA ?? "";

interface GroundTruth {
  query: string;
  embedding: number[];
  top10: { url: string; score: number }[];
}

function lines(file: string): string[] {
  return readFileSync(join(data, file), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
}

export function groundTruth(n: number): GroundTruth[] {
  return lines("queries-dev.jsonl")
    .slice(0, n)
    .map((l) => JSON.parse(l) as GroundTruth);
}

function sideBySide(expected: GroundTruth["top10"], got: SearchResult[]): string {
  const rows = Array.from({ length: Math.max(expected.length, got.length) }, (_, i) => {
    const e = expected[i];
    const g = got[i];
    return `${i + 1} | ${e ? `${e.url} ${e.score.toFixed(6)}` : "-"} | ${g ? `${g.id} ${g.score.toFixed(6)}` : "-"}`;
  });
  return ["rank | expected | got", ...rows].join("\n");
}

function assertExact(expected: GroundTruth["top10"], got: SearchResult[]): void {
  const table = sideBySide(expected, got);
  assert.deepEqual(
    got.map((r) => r.id),
    expected.map((e) => e.url),
    table,
  );
  for (const [i, e] of expected.entries()) {
    assert.ok(Math.abs((got[i]?.score ?? Infinity) - e.score) <= 1e-5, table);
  }
}

describe("against a live semsearch", { skip: url ? false : "SEMSEARCH_URL is not set" }, () => {
  const client = new Semsearch({ baseUrl: url ?? "", apiKey, timeoutMs: 30_000 });

  it("search returns the ground-truth top 10 with the vector alone", async () => {
    for (const q of groundTruth(5)) {
      const answer = await client.search({ vector: q.embedding, k: 10, with_text: false });

      assertExact(q.top10, answer.results);
      assert.ok(answer.results.every((r) => r.text === undefined && r.title !== undefined));
    }
  });

  it("search with the defaults gives 3 results with their texts", async () => {
    const [q] = groundTruth(1);

    const answer = await client.search({ vector: q!.embedding });

    assert.equal(answer.results.length, 3);
    assert.ok(answer.results.every((r) => typeof r.text === "string" && r.text.length > 0));
  });

  it("batch answers every query in order like single searches", async () => {
    const queries = groundTruth(5);

    const answer = await client.batch(queries.map((q) => ({ vector: q.embedding, k: 10, with_text: false })));

    assert.equal(answer.results.length, queries.length);
    for (const [i, q] of queries.entries()) {
      assertExact(q.top10, answer.results[i] ?? []);
    }
  });

  it("moreLikeThis leaves the document out and equals a vector search with its stored row", async () => {
    const id = groundTruth(1)[0]!.top10[0]!.url;
    const doc = await client.document(id, { withEmbedding: true });

    const similar = await client.moreLikeThis(id, { k: 3, with_text: false });
    const byVector = await client.search({ vector: doc.embedding ?? [], k: 4, with_text: false });

    assert.equal(doc.id, id);
    assert.ok(!similar.results.some((r) => r.id === id));
    const expected = byVector.results.filter((r) => r.id !== id).slice(0, 3);
    assert.deepEqual(
      similar.results.map((r) => r.id),
      expected.map((r) => r.id),
    );
  });

  it("document by a URL id with slashes, embedding only on request", async () => {
    const id = groundTruth(1)[0]!.top10[0]!.url;

    const plain = await client.document(id);
    const full = await client.document(id, { withEmbedding: true });

    assert.ok(id.split("/").length > 4, id);
    assert.equal(plain.url, id);
    assert.equal(plain.embedding, undefined);
    assert.equal(full.embedding?.length, groundTruth(1)[0]!.embedding.length);
    assert.ok(plain.expires_at === undefined || !Number.isNaN(Date.parse(plain.expires_at)));
  });

  it("stats count the corpus with named skip reasons and a known kernel", async () => {
    const stats = await client.stats();

    assert.equal(stats.documents, lines("corpus-dev.jsonl").length);
    assert.equal(stats.skipped.invalid_json, 0);
    assert.ok(["scalar", "avx2", "avx512", "neon"].includes(stats.kernel), stats.kernel);
    assert.ok(!Number.isNaN(Date.parse(stats.loaded_at)));
  });

  it("a url_prefix filter keeps exactly the matching documents of the unfiltered ranking", async () => {
    const [q] = groundTruth(1);
    const all = await client.search({ vector: q!.embedding, k: 1000, with_text: false });
    const prefix = q!.top10[0]!.url.slice(0, q!.top10[0]!.url.lastIndexOf("/") + 2);

    const filtered = await client.search({ vector: q!.embedding, k: 10, with_text: false, filter: { url_prefix: prefix } });

    const expected = all.results.filter((r) => r.url.startsWith(prefix)).slice(0, 10);
    assert.ok(expected.length > 0, prefix);
    assert.deepEqual(
      filtered.results.map((r) => r.id),
      expected.map((r) => r.id),
    );
    assert.equal(filtered.fewer_results_reason, expected.length < 10 ? "filter" : undefined);
  });

  it("a filter on an attribute no document has is 422 unknown_filter_field", async () => {
    const [q] = groundTruth(1);

    const error = await client
      .search({ vector: q!.embedding, filter: { fields: { locale: "en" } } })
      .catch((e: unknown) => e);

    assert.ok(error instanceof SemsearchError);
    assert.equal(error.code, "unknown_filter_field");
  });

  it("embed gives the vectors text search uses, or says text search is off like search does", async () => {
    const [q] = groundTruth(1);

    const embedded = await client.embed(q!.query).catch((e: unknown) => e);
    const byText = await client.search({ text: q!.query, k: 5, with_text: false }).catch((e: unknown) => e);

    if (embedded instanceof SemsearchError) {
      assert.equal(embedded.code, "text_search_disabled");
      assert.ok(byText instanceof SemsearchError && byText.code === "text_search_disabled", String(byText));
      return;
    }
    assert.ok(!(embedded instanceof Error), String(embedded));
    const answer = embedded as Awaited<ReturnType<Semsearch["embed"]>>;
    assert.equal(answer.embeddings.length, 1);
    assert.equal(answer.dimension, q!.embedding.length);
    const byVector = await client.search({ vector: answer.embeddings[0]!, k: 5, with_text: false });
    assert.ok(!(byText instanceof Error), String(byText));
    assert.deepEqual(
      (byText as Awaited<ReturnType<Semsearch["search"]>>).results.map((r) => r.id),
      byVector.results.map((r) => r.id),
    );
  });

  it("errors arrive as SemsearchError with the problem code", async () => {
    const wrongDimension = await client.search({ vector: [1, 0] }).catch((e: unknown) => e);
    const missing = await client.document("https://example.org/no-such-article").catch((e: unknown) => e);

    assert.ok(wrongDimension instanceof SemsearchError);
    assert.equal(wrongDimension.status, 422);
    assert.equal(wrongDimension.code, "wrong_dimension");
    assert.ok(missing instanceof SemsearchError);
    assert.equal(missing.code, "document_not_found");
  });

  it("a missing or wrong key is 401 unauthorized", { skip: apiKey ? false : "the server wants no key" }, async () => {
    const anonymous = new Semsearch({ baseUrl: url ?? "" });

    const error = await anonymous.stats().catch((e: unknown) => e);

    assert.ok(error instanceof SemsearchError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "unauthorized");
  });
});
