// Retry, timeout and error mapping, with a fetch that answers what each test
// scripts: these are the answers a live server gives only under load
// (503 overloaded) or when stuck, so they are staged rather than provoked.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Semsearch, SemsearchError } from "../src/index.js";

function problem(status: number, code: string, headers: Record<string, string> = {}): Response {
  const body = { type: `urn:semsearch:problem:${code}`, title: "t", status, detail: `${code} detail`, code };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}

const ok = (): Response =>
  new Response(JSON.stringify({ results: [], took_us: 1, index_version: 1 }), {
    status: 200,
    headers: { "content-type": "application/json" },
  });

/** A fetch that plays `answers` in order and records when each request came. */
function scripted(answers: (() => Response | Promise<Response>)[]) {
  const calls: { at: number; request: Request }[] = [];
  const fetch = async (request: Request): Promise<Response> => {
    calls.push({ at: Date.now(), request });
    const next = answers[calls.length - 1];
    if (!next) throw new Error("more requests than scripted answers");
    return next();
  };
  return { fetch, calls };
}

describe("retries and errors", () => {
  it("retries 503 overloaded after Retry-After, then answers", async () => {
    const { fetch, calls } = scripted([() => problem(503, "overloaded", { "Retry-After": "1" }), ok]);
    const client = new Semsearch({ baseUrl: "http://semsearch.test", fetch, retries: 2 });

    const answer = await client.search({ vector: [1, 0] });

    assert.equal(answer.index_version, 1);
    assert.equal(calls.length, 2);
    const waited = calls[1]!.at - calls[0]!.at;
    assert.ok(waited >= 950, `waited ${waited} ms for Retry-After: 1`);
    assert.equal(await calls[1]!.request.text(), JSON.stringify({ vector: [1, 0] }), "the same body is sent again");
  });

  it("caps the wait at maxRetryWaitMs whatever Retry-After says", async () => {
    const { fetch, calls } = scripted([() => problem(503, "overloaded", { "Retry-After": "3600" }), ok]);
    const client = new Semsearch({ baseUrl: "http://semsearch.test", fetch, maxRetryWaitMs: 50 });

    await client.stats();

    assert.equal(calls.length, 2);
    assert.ok(calls[1]!.at - calls[0]!.at < 1000);
  });

  it("gives up after `retries` retries with the last overloaded error", async () => {
    const overloaded = () => problem(503, "overloaded", { "Retry-After": "0" });
    const { fetch, calls } = scripted([overloaded, overloaded, overloaded]);
    const client = new Semsearch({ baseUrl: "http://semsearch.test", fetch, retries: 2 });

    const error = await client.search({ text: "q" }).catch((e: unknown) => e);

    assert.ok(error instanceof SemsearchError);
    assert.equal(error.code, "overloaded");
    assert.equal(error.retryAfterSecs, 0);
    assert.equal(calls.length, 3);
  });

  it("does not retry other failures, not even other 503s", async () => {
    for (const answer of [() => problem(503, "not_ready"), () => problem(422, "wrong_dimension")]) {
      const { fetch, calls } = scripted([answer, ok]);
      const client = new Semsearch({ baseUrl: "http://semsearch.test", fetch });

      const error = await client.search({ vector: [1] }).catch((e: unknown) => e);

      assert.ok(error instanceof SemsearchError);
      assert.equal(calls.length, 1, String(error.code));
    }
  });

  it("a request that outlasts timeoutMs fails as a timeout", async () => {
    const hang = (request: Request) =>
      new Promise<Response>((_, reject) => request.signal.addEventListener("abort", () => reject(request.signal.reason)));
    const client = new Semsearch({ baseUrl: "http://semsearch.test", fetch: hang, timeoutMs: 50 });
    // AbortSignal.timeout's timer does not keep node alive; a real socket would.
    const keepAlive = setTimeout(() => {}, 10_000);

    const error = await client.stats().catch((e: unknown) => e);
    clearTimeout(keepAlive);

    assert.ok(error instanceof SemsearchError);
    assert.equal(error.status, 0);
    assert.equal(error.code, undefined);
    assert.ok(error.isTimeout, String(error.cause));
  });

  it("sends the API key as a Bearer token and the id percent-encoded in the path", async () => {
    const { fetch, calls } = scripted([
      () => new Response("{}", { status: 200, headers: { "content-type": "application/json" } }),
    ]);
    const client = new Semsearch({ baseUrl: "http://semsearch.test/", fetch, apiKey: "k1" });

    await client.document("https://help.example/a/b?c");

    const request = calls[0]!.request;
    assert.equal(request.headers.get("authorization"), "Bearer k1");
    assert.equal(new URL(request.url).pathname, "/v1/documents/https%3A%2F%2Fhelp.example%2Fa%2Fb%3Fc");
  });

  it("embed sends one text as a list and returns the server's vectors", async () => {
    const answer = { embeddings: [[0.6, 0.8]], model: "m", dimension: 2, truncated: [false] };
    const { fetch, calls } = scripted([
      () => new Response(JSON.stringify(answer), { status: 200, headers: { "content-type": "application/json" } }),
    ]);
    const client = new Semsearch({ baseUrl: "http://semsearch.test", fetch });

    const got = await client.embed("how do I pay", { normalization: "chatbot" });

    assert.deepEqual(got, answer);
    assert.equal(new URL(calls[0]!.request.url).pathname, "/v1/embed");
    assert.deepEqual(JSON.parse(await calls[0]!.request.text()), { texts: ["how do I pay"], normalization: "chatbot" });
  });
});
