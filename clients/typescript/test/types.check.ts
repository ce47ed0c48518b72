// Compile-time checks, proven by `tsc --noEmit --strict` (a `@ts-expect-error`
// whose line compiles is itself an error): the generated types accept the
// bodies the server accepts and reject the ones it answers 422 to.
import type { BatchResponse, SearchRequest, SearchResult, StatsResponse } from "../src/index.js";

export const justAVector: SearchRequest = { vector: [0.12, -0.03, 0.51] };
export const textWithOptions: SearchRequest = { text: "How do I reset my password?", k: 5, with_text: false };
export const moreLikeThis: SearchRequest = { id: "https://example.org/a", min_score: 0.2 };
export const nullCountsAsAbsent: SearchRequest = { vector: [1], id: null };
export const filtered: SearchRequest = {
  text: "refund",
  filter: { url_prefix: "https://help.example.com/en/", fields: { locale: "en", product: ["a", "b"], year: 2024 } },
};
// @ts-expect-error a filter value is a scalar or a list of scalars
export const nestedFilter: SearchRequest = { vector: [1], filter: { fields: { locale: { lang: "en" } } } };
// @ts-expect-error a misspelt filter key is an unknown_field
export const filterTypo: SearchRequest = { vector: [1], filter: { url_prefx: "https://" } };

// @ts-expect-error no query at all: the server answers 422 query_required
export const nothing: SearchRequest = {};
// @ts-expect-error two kinds of query: the server answers 422 ambiguous_query
export const vectorAndId: SearchRequest = { vector: [1], id: "https://example.org/a" };
// @ts-expect-error two kinds of query
export const textAndVector: SearchRequest = { text: "q", vector: [1] };
// @ts-expect-error a misspelt option is an unknown_field
export const typo: SearchRequest = { vector: [1], top_k: 3 };

// Closed sets are unions of literals, not `string`.
export const kernel: StatsResponse["kernel"] = "avx2";
// @ts-expect-error not a kernel name
export const noKernel: StatsResponse["kernel"] = "sse";
export const feed: StatsResponse["refresh"]["change_feed"] = "tracking";
export const skippedInvalidJson = (s: StatsResponse): number => s.skipped.invalid_json;
export const reasons = (b: BatchResponse): (string | null)[] => b.fewer_results_reasons;
// title is always there (string or null); text only when asked for.
export const title = (r: SearchResult): string | null => r.title;
export const text = (r: SearchResult): string | null | undefined => r.text;
