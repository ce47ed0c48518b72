/**
 * A drop-in for the chatbot's similarity search (NestJS): question → the
 * top-k articles with their texts → the context block for the prompt.
 *
 * Wire it up once:
 *
 * ```ts
 * @Module({
 *   providers: [
 *     SearchService,
 *     {
 *       provide: SEARCH_OPTIONS,
 *       useFactory: (embeddings: EmbeddingsService): SearchServiceOptions => ({
 *         baseUrl: process.env.SEMSEARCH_URL ?? "http://semsearch:8080",
 *         apiKey: process.env.SEMSEARCH_API_KEY,
 *         // The model that embedded the articles; omit to let semsearch embed
 *         // the question itself (its embedder: the in-process model by default).
 *         embedQuestion: (q) => embeddings.embedQuery(q),
 *       }),
 *       inject: [EmbeddingsService],
 *     },
 *   ],
 *   exports: [SearchService],
 * })
 * export class SearchModule {}
 * ```
 *
 * What a production caller needs, and where it is: a timeout per attempt
 * (`timeoutMs`, default 2 s here: a search takes milliseconds), and a retry
 * on 503 `overloaded` that waits as long as `Retry-After` says, bounded
 * (both in `@semsearch/client`). Every other failure is logged with its
 * problem `code` and answered with no context, so the chatbot still
 * answers, only without articles.
 */
import { Inject, Injectable, Logger } from "@nestjs/common";
import { Semsearch, SemsearchError, type SearchFilter, type SearchRequest, type SearchResult } from "@semsearch/client";

export const SEARCH_OPTIONS = Symbol("SEARCH_OPTIONS");

export interface SearchServiceOptions {
  baseUrl: string;
  apiKey?: string | undefined;
  /** Per attempt, in ms (default 2 000). */
  timeoutMs?: number;
  /** Retries after 503 `overloaded` (default 2). */
  retries?: number;
  /** How many articles go into the context (default 3). */
  k?: number;
  /** Articles scoring below this are left out (default: none). */
  minScore?: number;
  /** The question's embedding, by the model that embedded the articles. */
  embedQuestion?: (question: string) => Promise<number[]>;
  /** For tests: a fetch to use instead of the global one. */
  fetch?: (request: Request) => Promise<Response>;
}

/** One article as the prompt gets it. */
export interface Article {
  url: string;
  title: string;
  text: string;
  score: number;
}

@Injectable()
export class SearchService {
  private readonly logger = new Logger(SearchService.name);
  private readonly semsearch: Semsearch;

  constructor(@Inject(SEARCH_OPTIONS) private readonly options: SearchServiceOptions) {
    this.semsearch = new Semsearch({
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      timeoutMs: options.timeoutMs ?? 2_000,
      retries: options.retries ?? 2,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  /**
   * The best articles for a question, best first (ties by ascending URL id),
   * among those matching `filter` if given (e.g. the user's locale:
   * `{ fields: { locale: "en" } }`); still the exact top-k.
   */
  async similaritySearch(question: string, k = this.options.k ?? 3, filter?: SearchFilter): Promise<Article[]> {
    const shared = { k, min_score: this.options.minScore ?? null, with_text: true, ...(filter ? { filter } : {}) };
    const query: SearchRequest = this.options.embedQuestion
      ? { ...shared, vector: await this.options.embedQuestion(question) }
      : { ...shared, text: question };
    const answer = await this.semsearch.search(query);
    return answer.results.map(toArticle);
  }

  /**
   * The context block for the prompt, or "" when semsearch cannot help
   * right now (the reason is logged with its problem code).
   */
  async buildContext(question: string, k?: number, filter?: SearchFilter): Promise<string> {
    let articles: Article[];
    try {
      articles = await this.similaritySearch(question, k, filter);
    } catch (e) {
      if (!(e instanceof SemsearchError)) throw e;
      this.logger.warn(`no context: semsearch ${e.code ?? (e.isTimeout ? "timeout" : "unreachable")} (${e.status})`);
      return "";
    }
    return articles.map((a, i) => `[${i + 1}] ${a.title}\n${a.url}\n${a.text}`).join("\n\n");
  }
}

function toArticle(r: SearchResult): Article {
  return { url: r.url, title: r.title ?? r.url, text: r.text ?? "", score: r.score };
}
