/**
 * `@semsearch/client`: a typed client for semsearch's HTTP API.
 *
 * The types come from `openapi.yaml` (generated into `schema.ts` by
 * openapi-typescript; CI fails when they drift), the transport is
 * openapi-fetch. This file adds what a production caller needs on top:
 * one method per use, errors thrown as {@link SemsearchError} carrying the
 * problem `code`, a timeout per request, and a bounded retry on
 * 503 `overloaded` that waits as long as the server's `Retry-After` says.
 */
import createClient, { type Client } from "openapi-fetch";
import type { Writable } from "openapi-typescript-helpers";

import type { components, paths } from "./schema.js";

export type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
/** A search body: exactly one of `vector`, `text` or `id`, plus options. */
export type SearchRequest = Schemas["SearchRequest"];
export type VectorQuery = Schemas["VectorQuery"];
export type TextQuery = Schemas["TextQuery"];
export type IdQuery = Schemas["IdQuery"];
/** The options every kind of query shares (`k`, `min_score`, `with_text`, `filter`, …). */
export type QueryOptions = Omit<VectorQuery, "vector" | "text" | "id">;
/**
 * Only documents matching every condition: `url_prefix`, and per attribute
 * (the stored value's extra string/number/boolean fields) one value or a
 * list of accepted values. The answer stays the exact top-k among them.
 */
export type SearchFilter = Schemas["SearchFilter"];
export type EmbedRequest = Schemas["EmbedRequest"];
export type EmbedResponse = Schemas["EmbedResponse"];
export type Normalization = Schemas["Normalization"];
export type SearchResponse = Schemas["SearchResponse"];
export type SearchResult = Schemas["SearchResult"];
export type BatchResponse = Schemas["BatchResponse"];
export type DocumentResponse = Schemas["DocumentResponse"];
export type StatsResponse = Schemas["StatsResponse"];
export type Ready = Schemas["Ready"];
export type Problem = Schemas["Problem"];
export type ProblemCode = Schemas["ProblemCode"];

/**
 * Every optional field also takes `undefined` (as absent), so
 * `apiKey: process.env.SEMSEARCH_API_KEY` compiles under
 * `exactOptionalPropertyTypes`.
 */
export interface SemsearchOptions {
  /** Where semsearch listens, e.g. `http://semsearch:8080`. */
  baseUrl: string;
  /** One of the server's `SEMSEARCH_API_KEYS`; omit when it sets none. */
  apiKey?: string | undefined;
  /**
   * Per attempt, in ms (default 10 000): a scan takes milliseconds, so a
   * request that takes seconds is stuck, and the chatbot should answer
   * without context rather than hang.
   */
  timeoutMs?: number | undefined;
  /** Retries after a 503 `overloaded` (default 2; 0 turns retrying off). */
  retries?: number | undefined;
  /** Longest wait before a retry, in ms, whatever `Retry-After` says (default 5 000). */
  maxRetryWaitMs?: number | undefined;
  /** A `fetch` to use instead of the global one (tests, proxies). */
  fetch?: ((request: Request) => Promise<Response>) | undefined;
}

/**
 * Any failure of a call: an error answer (then `code` is the problem's
 * stable `code`, the thing to switch on), a timeout, or a network error
 * (`status` 0, `code` undefined, the cause in `cause`).
 */
export class SemsearchError extends Error {
  override readonly name = "SemsearchError";
  /** HTTP status; 0 when no answer arrived. */
  readonly status: number;
  /** The problem's `code`; undefined when there is no problem body. */
  readonly code: ProblemCode | undefined;
  /** The whole RFC 9457 body (for a batch, `errors` lists every failing query). */
  readonly problem: Problem | undefined;
  /** Seconds the server asked us to wait (`Retry-After`), if it did. */
  readonly retryAfterSecs: number | undefined;

  constructor(
    message: string,
    init: { status: number; problem?: Problem | undefined; retryAfterSecs?: number | undefined; cause?: unknown },
  ) {
    super(message, { cause: init.cause });
    this.status = init.status;
    this.problem = init.problem;
    this.code = init.problem?.code;
    this.retryAfterSecs = init.retryAfterSecs;
  }

  /** Whether the call timed out on our side (`timeoutMs`). */
  get isTimeout(): boolean {
    return this.cause instanceof DOMException && this.cause.name === "TimeoutError";
  }
}

/** openapi-fetch's answer, whatever the operation. */
interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_RETRIES = 2;
const DEFAULT_MAX_RETRY_WAIT_MS = 5_000;

export class Semsearch {
  /** The generated openapi-fetch client, for anything the helpers do not cover. */
  readonly raw: Client<paths>;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly maxRetryWaitMs: number;

  constructor(options: SemsearchOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = Math.max(0, options.retries ?? DEFAULT_RETRIES);
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? DEFAULT_MAX_RETRY_WAIT_MS;
    this.raw = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ""),
      headers: options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {},
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  /** The exact top-k for one query (a vector, a question text or a document id). */
  search(query: SearchRequest): Promise<SearchResponse> {
    const body = requestBody(query);
    return this.call((signal) => this.raw.POST("/v1/search", { body, signal }));
  }

  /** Many queries, one pass over the matrix; answers in request order. */
  batch(queries: SearchRequest[]): Promise<BatchResponse> {
    const body = { queries: queries.map(requestBody) };
    return this.call((signal) => this.raw.POST("/v1/search/batch", { body, signal }));
  }

  /** Documents like the document `id` (itself left out). */
  moreLikeThis(id: string, options: QueryOptions = {}): Promise<SearchResponse> {
    return this.search({ ...options, id });
  }

  /** One document by id (for the chatbot, its URL; slashes are fine). */
  document(id: string, options: { withEmbedding?: boolean | undefined } = {}): Promise<DocumentResponse> {
    return this.call((signal) =>
      this.raw.GET("/v1/documents/{id}", {
        params: { path: { id }, query: options.withEmbedding ? { with_embedding: true } : {} },
        signal,
      }),
    );
  }

  /** What the index holds and how it got there. */
  stats(): Promise<StatsResponse> {
    return this.call((signal) => this.raw.GET("/v1/stats", { signal }));
  }

  /** Readiness; throws a `not_ready` SemsearchError until the first load is done. */
  ready(): Promise<Ready> {
    return this.call((signal) => this.raw.GET("/readyz", { signal }));
  }

  /**
   * Embeds texts with the server's embedder, the model the index was built
   * with: for the article side of the chatbot (new articles to store) or to
   * reuse one question's vector across several searches. One text or many
   * (1 to the server's SEMSEARCH_MAX_BATCH); 422 `text_search_disabled`
   * when the server has no embedder.
   */
  embed(texts: string | string[], options: { normalization?: Normalization | undefined } = {}): Promise<EmbedResponse> {
    const body: EmbedRequest = { texts: typeof texts === "string" ? [texts] : texts };
    if (options.normalization !== undefined) {
      body.normalization = options.normalization;
    }
    return this.call((signal) => this.raw.POST("/v1/embed", { body, signal }));
  }

  /**
   * Runs one operation with a fresh timeout per attempt, retrying a 503
   * `overloaded` after its `Retry-After` (capped), at most `retries` times.
   * Every other failure is thrown at once: `not_ready` and `timeout` are
   * not a burst that passes in a second, and a 4xx never gets better.
   */
  private async call<T>(send: (signal: AbortSignal) => Promise<FetchResult<T>>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(send);
      } catch (e) {
        if (!(e instanceof SemsearchError) || e.code !== "overloaded" || attempt >= this.retries) {
          throw e;
        }
        await sleep(Math.min((e.retryAfterSecs ?? 1) * 1000, this.maxRetryWaitMs));
      }
    }
  }

  private async once<T>(send: (signal: AbortSignal) => Promise<FetchResult<T>>): Promise<T> {
    let result: FetchResult<T>;
    try {
      result = await send(AbortSignal.timeout(this.timeoutMs));
    } catch (cause) {
      const timedOut = cause instanceof DOMException && cause.name === "TimeoutError";
      const message = timedOut ? `semsearch did not answer within ${this.timeoutMs} ms` : `semsearch is unreachable`;
      throw new SemsearchError(message, { status: 0, cause });
    }
    const { data, error, response } = result;
    if (response.ok && data !== undefined) {
      return data;
    }
    const problem = isProblem(error) ? error : undefined;
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    throw new SemsearchError(
      problem ? `${problem.code}: ${problem.detail}` : `semsearch answered ${response.status} without a problem body`,
      { status: response.status, problem, retryAfterSecs: Number.isFinite(retryAfter) ? retryAfter : undefined },
    );
  }
}

/** The three fields that name the kind of query. */
const QUERY_FIELDS: readonly string[] = ["vector", "text", "id"];

/**
 * A query as openapi-fetch types request bodies. Its `Writable` (in
 * openapi-typescript-helpers 0.1.0) takes a property whose only type is
 * null for a read-only one and forbids it, so `{vector, id: null}` would
 * not type-check there; the server reads null as absent, so leaving those
 * keys out sends the same query.
 */
function requestBody(query: SearchRequest): Writable<SearchRequest> {
  const entries = Object.entries(query).filter(([key, value]) => value !== null || !QUERY_FIELDS.includes(key));
  return Object.fromEntries(entries) as unknown as Writable<SearchRequest>;
}

function isProblem(body: unknown): body is Problem {
  return typeof body === "object" && body !== null && typeof (body as { code?: unknown }).code === "string";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
