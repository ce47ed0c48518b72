// examples/nest-search.service.ts against the live server, outside Nest's
// container (the decorators only record metadata): question → ground-truth
// embedding (the shared queries carry both) → top-k with texts → context.
import "reflect-metadata";

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { SearchService } from "../examples/nest-search.service.js";
import { groundTruth } from "./live.test.js";

const url = process.env.SEMSEARCH_URL;
const apiKey = process.env.SEMSEARCH_API_KEY || undefined;

function titles(): Map<string, string> {
  const corpus = readFileSync(join(process.env.SEMSEARCH_SHARED_DATA ?? "", "corpus-dev.jsonl"), "utf8");
  const rows = corpus
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { url: string; title: string });
  return new Map(rows.map((r) => [r.url, r.title]));
}

describe("the NestJS example", { skip: url ? false : "SEMSEARCH_URL is not set" }, () => {
  const queries = groundTruth(3);
  const embeddings = new Map(queries.map((q) => [q.query, q.embedding]));
  const embedQuestion = async (question: string): Promise<number[]> => {
    const embedding = embeddings.get(question);
    if (!embedding) throw new Error(`no embedding for ${question}`);
    return embedding;
  };

  it("builds the context from the exact top-k articles, best first", async () => {
    const service = new SearchService({ baseUrl: url ?? "", apiKey, embedQuestion, k: 3 });
    const byUrl = titles();

    for (const q of queries) {
      const articles = await service.similaritySearch(q.query);
      const context = await service.buildContext(q.query);

      const expected = q.top10.slice(0, 3);
      assert.deepEqual(
        articles.map((a) => a.url),
        expected.map((e) => e.url),
      );
      assert.ok(articles.every((a) => a.text.length > 0));
      const positions = expected.map((e) => context.indexOf(`] ${byUrl.get(e.url)}\n${e.url}\n`));
      assert.ok(
        positions.every((p, i) => p >= 0 && (i === 0 || p > positions[i - 1]!)),
        `titles in rank order: ${positions}`,
      );
    }
  });

  it("answers an empty context when semsearch refuses the query", async () => {
    const wrongModel = async (): Promise<number[]> => [1, 0, 0];
    const service = new SearchService({ baseUrl: url ?? "", apiKey, embedQuestion: wrongModel });

    const context = await service.buildContext("anything");

    assert.equal(context, "");
  });
});
