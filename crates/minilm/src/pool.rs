//! The bounded inference pool: embedding requests from async handlers run
//! on dedicated threads (one per core, up to [`MAX_WORKERS`]), concurrent
//! requests coalesced into one batch per thread.
//!
//! ```text
//!  embed(texts).await ──admit──► queue (≤ texts, ≤ bytes) ──► worker threads, each:
//!       ▲   (or Overloaded /            pull while the batch has room,
//!       │    TooLarge at once)          tokenize, one forward pass,
//!       └────────── oneshot ◄────────── reply per request
//! ```
//!
//! - Off the tokio workers: a forward pass is milliseconds of CPU; the
//!   handler only awaits a oneshot.
//! - Coalescing without waiting: while a pass runs, new requests queue;
//!   the next pass takes every waiting request that fits (up to
//!   `max_batch_texts` texts and `max_batch_tokens` word pieces). A lone
//!   request never waits for company.
//! - Every core, no hand-offs: `workers` threads each run whole passes of
//!   their own, so questions arriving together keep all cores busy while a
//!   lone question still runs on one. (Splitting one pass between threads,
//!   `Threads::Two`, hands work back and forth ~25 times a pass, and a
//!   hand-off to a busy core can wait a whole time slice; see
//!   `EmbedderOptions::threads`.) A worker that holds bulk work leaves
//!   newly waiting questions to an idle one.
//! - Bounded: admission refuses a request at once when the queue would
//!   exceed `max_queued_texts` or `max_queued_bytes` ([`PoolError::Overloaded`]),
//!   and each worker's scratch never exceeds `max_batch_tokens` rows
//!   (15 KB each for MiniLM: `Scratch::bytes_per_token`), so memory is
//!   bounded whatever the load: `workers` × that.
//! - Never a panic into a caller: a panic in a pass is caught; that batch's
//!   callers get [`PoolError::WorkerFailed`] and the worker goes on.
//! - Questions before bulk work (issue 22): a request is a
//!   [`Class::Question`] (one search question) or [`Class::Bulk`]
//!   (`/v1/embed`). Waiting questions are taken before any bulk request,
//!   and a pass that carries questions carries nothing else, so a question
//!   waits for at most the one bulk pass already running (≤
//!   `max_batch_tokens` word pieces), never for a whole bulk request.
//! - Work per request bounded in word pieces, not texts: a bulk request
//!   over `max_request_tokens` is refused ([`PoolError::TooManyTokens`])
//!   as soon as tokenising it crosses the bound, before any pass.
//! - A question's caller may give up before its pass starts
//!   ([`Ticket::started`] with a timer, see `semsearch::embed`), and is
//!   then answered 503 at once instead of waiting behind the work.
//! - A request whose caller went away (dropped future) is skipped unrun,
//!   also after it was tokenised.

use std::{
    collections::VecDeque,
    panic::{catch_unwind, AssertUnwindSafe},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread::JoinHandle,
};

use thiserror::Error;
use tokio::sync::oneshot;

use super::{
    bert::{ForwardError, Scratch},
    tokenize::{TokenBatch, TokenizeError, MAX_TOKENS},
    Embedding, LocalEmbedder,
};

/// Limits of the pool. Phase 2's config builds it from flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Texts per forward pass at most (coalesced from concurrent requests).
    pub max_batch_texts: usize,
    /// Word pieces per forward pass at most: the scratch memory bound
    /// (rows of the pass). Raised to [`MAX_TOKENS`] if lower, so one
    /// longest text always fits.
    pub max_batch_tokens: usize,
    /// Texts waiting at most; a request that would exceed it is refused.
    pub max_queued_texts: usize,
    /// Bytes of text waiting at most; likewise.
    pub max_queued_bytes: usize,
    /// Word pieces one bulk request may hold at most (raised to
    /// [`MAX_TOKENS`] if lower): the bound on how long one request keeps
    /// the model busy. Questions are one text, so at most [`MAX_TOKENS`].
    pub max_request_tokens: usize,
    /// Worker threads, each running whole forward passes with its own
    /// scratch (at least 1, at most [`MAX_WORKERS`]).
    pub workers: usize,
}

/// Most worker threads a pool runs: each holds up to `max_batch_tokens`
/// rows of scratch (31.5 MB at the defaults), and past a few cores the
/// HTTP side, not the encoder, is what waits.
pub const MAX_WORKERS: usize = 4;

/// One worker per core, up to [`MAX_WORKERS`].
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, MAX_WORKERS)
}

impl Default for PoolSettings {
    /// 32 texts or 2,048 word pieces per pass (31.5 MB of scratch per
    /// worker for MiniLM), 256 texts or 4 MiB queued, 16,384 word pieces
    /// per request (64 texts at the 256-piece truncation; about 7 s of one
    /// core in release), one worker per core ([`default_workers`]).
    fn default() -> Self {
        Self {
            max_batch_texts: 32,
            max_batch_tokens: 2048,
            max_queued_texts: 256,
            max_queued_bytes: 4 << 20,
            max_request_tokens: 16_384,
            workers: default_workers(),
        }
    }
}

/// Who is waiting for a request, which decides its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A search question: a person waits. Served before any bulk work.
    Question,
    /// Texts to embed in bulk (`/v1/embed`): served when no question waits.
    Bulk,
}

/// Why a request was not embedded.
#[derive(Debug, Error)]
pub enum PoolError {
    /// The queue is full; retry later (phase 2: 503 with Retry-After).
    #[error("the embedder is overloaded: {queued_texts} texts ({queued_bytes} bytes) already waiting")]
    Overloaded { queued_texts: usize, queued_bytes: usize },
    /// The request alone exceeds the queue's bounds; it can never be admitted.
    #[error("{texts} texts of {bytes} bytes exceed the embedder's queue ({max_texts} texts, {max_bytes} bytes)")]
    TooLarge { texts: usize, bytes: usize, max_texts: usize, max_bytes: usize },
    /// A text is empty or cannot be tokenised (the caller's input).
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// These texts (0-based) have no word pieces (control characters only, say).
    #[error("texts {indices:?} have no word pieces")]
    EmptyTexts { indices: Vec<usize> },
    /// The request holds more word pieces than one request may (counted
    /// up to the first text that crosses the bound).
    #[error("the texts hold more than {max} word pieces (at least {tokens}); split them into smaller requests")]
    TooManyTokens { tokens: usize, max: usize },
    /// The forward pass refused the batch (a bug: the tokenizer made it).
    #[error(transparent)]
    Forward(#[from] ForwardError),
    /// The pass serving this request panicked; the worker goes on.
    #[error("the embedder failed on this batch")]
    WorkerFailed,
    /// The pool is shut down.
    #[error("the embedder is shut down")]
    Closed,
}

/// What the pool runs: [`LocalEmbedder`] in production; tests use fakes.
pub trait BatchModel: Send + Sync + 'static {
    /// Appends text `index`'s word pieces to `batch`.
    ///
    /// # Errors
    /// The text cannot be embedded (empty, tokenizer failure).
    fn tokenize_into(&self, index: usize, text: &str, batch: &mut TokenBatch) -> Result<(), TokenizeError>;

    /// One vector per text of `batch`, in order.
    ///
    /// # Errors
    /// The batch is malformed.
    fn forward(&self, batch: &TokenBatch, scratch: &mut Scratch) -> Result<Vec<Embedding>, ForwardError>;
}

impl BatchModel for LocalEmbedder {
    fn tokenize_into(&self, index: usize, text: &str, batch: &mut TokenBatch) -> Result<(), TokenizeError> {
        LocalEmbedder::tokenize_into(self, index, text, batch)
    }

    fn forward(&self, batch: &TokenBatch, scratch: &mut Scratch) -> Result<Vec<Embedding>, ForwardError> {
        LocalEmbedder::forward(self, batch, scratch)
    }
}

/// Counters for `/metrics` and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Forward passes run.
    pub batches: u64,
    /// Texts embedded (each request's texts count once).
    pub texts: u64,
    /// Largest number of texts in one pass so far.
    pub largest_batch: usize,
    /// Bytes the workers' scratch holds, summed (each grows to its largest pass, then stays).
    pub scratch_bytes: usize,
    /// Texts waiting in the queue now.
    pub queued_texts: usize,
}

type Reply = oneshot::Sender<Result<Vec<Embedding>, PoolError>>;

struct Request {
    texts: Vec<String>,
    bytes: usize,
    class: Class,
    reply: Reply,
    /// Told when the request's first text enters a pass.
    started: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Queue {
    questions: VecDeque<Request>,
    bulk: VecDeque<Request>,
    texts: usize,
    bytes: usize,
    closed: bool,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.questions.is_empty() && self.bulk.is_empty()
    }
}

/// A request in the queue: await [`Self::started`] (optionally) and then
/// [`Self::answer`]. Dropping it withdraws the request (it is skipped unrun).
#[derive(Debug)]
pub struct Ticket {
    started: Option<oneshot::Receiver<()>>,
    answer: oneshot::Receiver<Result<Vec<Embedding>, PoolError>>,
}

impl Ticket {
    /// Resolves when the request's first pass starts (or it was answered
    /// without one: an error, or no texts). Cancel-safe.
    pub async fn started(&mut self) {
        if let Some(started) = &mut self.started {
            // An error reply drops the sender without a send: also "started".
            let _ = started.await;
            self.started = None;
        }
    }

    /// The vectors, in the order of the texts.
    ///
    /// # Errors
    /// As [`InferencePool::embed`].
    pub async fn answer(self) -> Result<Vec<Embedding>, PoolError> {
        // The worker answers every request it takes; a dropped sender means
        // the worker thread is gone.
        self.answer.await.unwrap_or(Err(PoolError::WorkerFailed))
    }
}

impl Queue {
    /// Admission: refuse at once what would exceed the bounds.
    fn admit(&self, settings: &PoolSettings, texts: usize, bytes: usize) -> Result<(), PoolError> {
        if self.closed {
            return Err(PoolError::Closed);
        }
        if texts > settings.max_queued_texts || bytes > settings.max_queued_bytes {
            return Err(PoolError::TooLarge {
                texts,
                bytes,
                max_texts: settings.max_queued_texts,
                max_bytes: settings.max_queued_bytes,
            });
        }
        if self.texts + texts > settings.max_queued_texts || self.bytes + bytes > settings.max_queued_bytes {
            return Err(PoolError::Overloaded { queued_texts: self.texts, queued_bytes: self.bytes });
        }
        Ok(())
    }
}

struct Shared {
    settings: PoolSettings,
    queue: Mutex<Queue>,
    wake: Condvar,
    batches: AtomicU64,
    texts: AtomicU64,
    largest_batch: AtomicUsize,
    scratch_bytes: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue's invariants hold between statements, so a panic while
        // holding the lock (there is none: no user code runs under it)
        // leaves it usable.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The pool: a handle to the queue and its worker threads. Cheap to share
/// behind an `Arc`; dropping it closes the queue (see [`Self::close`]).
pub struct InferencePool {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for InferencePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InferencePool").field("settings", &self.shared.settings).finish_non_exhaustive()
    }
}

impl InferencePool {
    /// Starts the worker threads for `model`.
    ///
    /// # Errors
    /// The OS refused a thread.
    pub fn start<M: BatchModel>(model: Arc<M>, settings: PoolSettings) -> std::io::Result<Self> {
        let settings = PoolSettings {
            max_batch_texts: settings.max_batch_texts.max(1),
            max_batch_tokens: settings.max_batch_tokens.max(MAX_TOKENS),
            max_request_tokens: settings.max_request_tokens.max(MAX_TOKENS),
            workers: settings.workers.clamp(1, MAX_WORKERS),
            ..settings
        };
        let shared = Arc::new(Shared {
            settings,
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            batches: AtomicU64::new(0),
            texts: AtomicU64::new(0),
            largest_batch: AtomicUsize::new(0),
            scratch_bytes: AtomicUsize::new(0),
        });
        let pool = Self { shared, workers: Mutex::new(Vec::new()) };
        for i in 0..settings.workers {
            let (model, shared) = (Arc::clone(&model), Arc::clone(&pool.shared));
            let worker = std::thread::Builder::new()
                .name(format!("embed-pool-{i}"))
                .spawn(move || Worker::new(model, shared).run());
            match worker {
                Ok(handle) => pool.workers.lock().unwrap_or_else(|p| p.into_inner()).push(handle),
                Err(e) => {
                    pool.join(); // the threads already started exit
                    return Err(e);
                }
            }
        }
        Ok(pool)
    }

    pub fn settings(&self) -> PoolSettings {
        self.shared.settings
    }

    /// Embeds `texts` (in order), sharing a forward pass with whatever
    /// other requests are waiting. No texts is no work.
    ///
    /// # Errors
    /// Refused at once: [`PoolError::Overloaded`], [`PoolError::TooLarge`],
    /// [`PoolError::Closed`]. After running: an empty or untokenisable
    /// text, or [`PoolError::WorkerFailed`].
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Embedding>, PoolError> {
        self.submit(texts, Class::Bulk)?.answer().await
    }

    /// Queues `texts` as `class` and returns at once with its [`Ticket`].
    ///
    /// # Errors
    /// Refused at once: [`PoolError::Overloaded`], [`PoolError::TooLarge`],
    /// [`PoolError::Closed`].
    pub fn submit(&self, texts: Vec<String>, class: Class) -> Result<Ticket, PoolError> {
        let (reply, answer) = oneshot::channel();
        if texts.is_empty() {
            let _ = reply.send(Ok(Vec::new()));
            return Ok(Ticket { started: None, answer });
        }
        let bytes = texts.iter().map(String::len).sum();
        let (started_tx, started) = oneshot::channel();
        {
            let mut queue = self.shared.lock();
            queue.admit(&self.shared.settings, texts.len(), bytes)?;
            queue.texts += texts.len();
            queue.bytes += bytes;
            let request = Request { texts, bytes, class, reply, started: Some(started_tx) };
            match class {
                Class::Question => queue.questions.push_back(request),
                Class::Bulk => queue.bulk.push_back(request),
            }
        }
        self.shared.wake.notify_one();
        Ok(Ticket { started: Some(started), answer })
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            batches: self.shared.batches.load(Ordering::Relaxed),
            texts: self.shared.texts.load(Ordering::Relaxed),
            largest_batch: self.shared.largest_batch.load(Ordering::Relaxed),
            scratch_bytes: self.shared.scratch_bytes.load(Ordering::Relaxed),
            queued_texts: self.shared.lock().texts,
        }
    }

    /// Refuses new requests; the workers finish those already queued, then
    /// exit. Idempotent.
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }

    /// [`Self::close`], then waits for the workers to finish (blocking: call
    /// it from `spawn_blocking` or a plain thread).
    pub fn join(&self) {
        self.close();
        let handles = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in handles {
            // A panic inside a pass is caught there; one escaping the loop
            // itself has already been reported by the panic hook.
            let _ = handle.join();
        }
    }
}

impl Drop for InferencePool {
    fn drop(&mut self) {
        self.close();
    }
}

/// A request taken off the queue, tokenised, partly or not yet embedded.
struct Active {
    tokens: TokenBatch,
    done: Vec<Embedding>,
    class: Class,
    reply: Reply,
    started: Option<oneshot::Sender<()>>,
}

impl Active {
    fn next(&self) -> usize {
        self.done.len()
    }
}

struct Worker<M> {
    model: Arc<M>,
    shared: Arc<Shared>,
    active: VecDeque<Active>,
    scratch: Scratch,
    /// This worker's share of `Shared::scratch_bytes`.
    scratch_reported: usize,
}

impl<M: BatchModel> Worker<M> {
    fn new(model: Arc<M>, shared: Arc<Shared>) -> Self {
        Self { model, shared, active: VecDeque::new(), scratch: Scratch::default(), scratch_reported: 0 }
    }

    fn run(mut self) {
        while self.pull() {
            self.run_batch();
        }
    }

    /// Moves waiting requests into `active`: questions until a pass of them
    /// is full, then bulk requests until the next pass is full (the rest
    /// stay queued for whichever worker is free first). Blocks only when
    /// there is nothing to do. `false`: closed and drained.
    fn pull(&mut self) -> bool {
        loop {
            // Texts not yet run, in all and of questions.
            let (mut unrun, mut unrun_questions) = (0, 0);
            for a in &self.active {
                let left = a.tokens.len() - a.next();
                unrun += left;
                if a.class == Class::Question {
                    unrun_questions += left;
                }
            }
            let request = {
                let mut queue = self.shared.lock();
                while queue.is_empty() && self.active.is_empty() && !queue.closed {
                    queue = self.shared.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
                // Questions go before any bulk work this worker holds, so
                // only questions count against taking another question.
                let max = self.shared.settings.max_batch_texts;
                let next = match queue.questions.front() {
                    Some(_) if unrun_questions < max => queue.questions.pop_front(),
                    Some(_) => None,
                    None if unrun < max => queue.bulk.pop_front(),
                    None => None,
                };
                match next {
                    Some(r) => {
                        queue.texts -= r.texts.len();
                        queue.bytes -= r.bytes;
                        r
                    }
                    None => return !self.active.is_empty(),
                }
            };
            if request.reply.is_closed() {
                continue;
            }
            self.tokenize(request);
        }
    }

    /// Tokenises `request` into `active` (questions before bulk work), or
    /// answers it: every text without word pieces, or the word-piece bound crossed.
    fn tokenize(&mut self, request: Request) {
        let mut tokens = TokenBatch::new();
        let model = &self.model;
        let max_tokens = self.shared.settings.max_request_tokens;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut empty = Vec::new();
            for (i, text) in request.texts.iter().enumerate() {
                match model.tokenize_into(i, text, &mut tokens) {
                    Ok(()) => {}
                    Err(TokenizeError::EmptyText { index }) => empty.push(index),
                    Err(e) => return Err(PoolError::Tokenize(e)),
                }
                if tokens.tokens() > max_tokens {
                    return Err(PoolError::TooManyTokens { tokens: tokens.tokens(), max: max_tokens });
                }
            }
            if empty.is_empty() {
                Ok(())
            } else {
                Err(PoolError::EmptyTexts { indices: empty })
            }
        }));
        match result {
            Ok(Ok(())) => {
                let active = Active {
                    tokens,
                    done: Vec::new(),
                    class: request.class,
                    reply: request.reply,
                    started: request.started,
                };
                match request.class {
                    // After the questions already waiting, before any bulk work.
                    Class::Question => {
                        let at = self.active.iter().position(|a| a.class == Class::Bulk).unwrap_or(self.active.len());
                        self.active.insert(at, active);
                    }
                    Class::Bulk => self.active.push_back(active),
                }
            }
            Ok(Err(e)) => {
                let _ = request.reply.send(Err(e));
            }
            Err(_) => {
                let _ = request.reply.send(Err(PoolError::WorkerFailed));
            }
        }
    }

    /// One forward pass over the front of `active`, within both budgets
    /// (always at least one text), then the replies of finished requests.
    ///
    /// A pass that starts with a question takes questions only, so a
    /// question's own pass stays short.
    fn run_batch(&mut self) {
        // Callers that went away (a question past its wait budget) are not run.
        self.active.retain(|a| !a.reply.is_closed());
        let settings = self.shared.settings;
        let mut batch = TokenBatch::new();
        // (index in `active`, texts taken from it)
        let mut parts: Vec<(usize, usize)> = Vec::new();
        let questions_only = self.active.front().is_some_and(|a| a.class == Class::Question);
        'fill: for (a, active) in self.active.iter().enumerate() {
            if questions_only && active.class == Class::Bulk {
                break;
            }
            let mut taken = 0;
            for t in active.next()..active.tokens.len() {
                let ids = active.tokens.text(t);
                let full =
                    batch.len() >= settings.max_batch_texts || batch.tokens() + ids.len() > settings.max_batch_tokens;
                if full && !batch.is_empty() {
                    if taken > 0 {
                        parts.push((a, taken));
                    }
                    break 'fill;
                }
                batch.push(ids, active.tokens.truncated(t));
                taken += 1;
            }
            if taken > 0 {
                parts.push((a, taken));
            }
        }
        if batch.is_empty() {
            return;
        }
        for &(a, _) in &parts {
            if let Some(started) = self.active[a].started.take() {
                let _ = started.send(());
            }
        }
        let (model, scratch) = (&self.model, &mut self.scratch);
        let result = catch_unwind(AssertUnwindSafe(|| model.forward(&batch, scratch)));
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        self.shared.texts.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.shared.largest_batch.fetch_max(batch.len(), Ordering::Relaxed);
        let failure = match result {
            Ok(Ok(vectors)) if vectors.len() == batch.len() => {
                let mut vectors = vectors.into_iter();
                for &(a, n) in &parts {
                    self.active[a].done.extend(vectors.by_ref().take(n));
                }
                None
            }
            Ok(Err(e)) => Some(Some(e)),
            Ok(Ok(_)) | Err(_) => {
                // A panic may leave the scratch half-written; start clean.
                self.scratch = Scratch::default();
                Some(None)
            }
        };
        let bytes = self.scratch.bytes();
        if bytes >= self.scratch_reported {
            self.shared.scratch_bytes.fetch_add(bytes - self.scratch_reported, Ordering::Relaxed);
        } else {
            self.shared.scratch_bytes.fetch_sub(self.scratch_reported - bytes, Ordering::Relaxed);
        }
        self.scratch_reported = bytes;
        // The batch came from a prefix of `active`.
        let in_batch = parts.last().map_or(0, |&(a, _)| a + 1);
        if let Some(forward_error) = failure {
            for active in self.active.drain(..in_batch) {
                let error = forward_error.clone().map_or(PoolError::WorkerFailed, PoolError::Forward);
                let _ = active.reply.send(Err(error));
            }
            return;
        }
        let mut unfinished = VecDeque::with_capacity(self.active.len());
        for active in self.active.drain(..) {
            if active.next() == active.tokens.len() {
                let _ = active.reply.send(Ok(active.done));
            } else {
                unfinished.push_back(active);
            }
        }
        self.active = unfinished;
    }
}

#[cfg(test)]
mod tests {
    //! The pool with a fake model: each text's "vector" encodes the text's
    //! word count and first word's length, so a reply can be matched to its
    //! request; a gate holds the worker inside a pass to fill the queue.

    use std::{sync::Condvar, time::Duration};

    use super::*;

    #[derive(Default)]
    struct Fake {
        gate: Mutex<bool>,
        opened: Condvar,
        batches: Mutex<Vec<usize>>,
        /// Passes started (the worker may be waiting at the gate in the last).
        entered: AtomicUsize,
    }

    impl Fake {
        fn closed_gate() -> Arc<Self> {
            Arc::new(Self { gate: Mutex::new(false), ..Self::default() })
        }

        fn open_gate() -> Arc<Self> {
            Arc::new(Self { gate: Mutex::new(true), ..Self::default() })
        }

        fn open(&self) {
            *self.gate.lock().expect("gate") = true;
            self.opened.notify_all();
        }

        fn batch_sizes(&self) -> Vec<usize> {
            self.batches.lock().expect("batches").clone()
        }
    }

    /// What the fake embeds for `text`.
    fn expected(text: &str) -> Vec<f32> {
        let words = text.split_whitespace().count() as f32;
        let first = text.split_whitespace().next().map_or(0, str::len) as f32;
        vec![words, first]
    }

    impl BatchModel for Fake {
        fn tokenize_into(&self, index: usize, text: &str, batch: &mut TokenBatch) -> Result<(), TokenizeError> {
            if text.trim().is_empty() {
                return Err(TokenizeError::EmptyText { index });
            }
            assert!(!text.contains("tokenizer-panic"), "fake tokenizer panic");
            let v = expected(text);
            let mut ids = vec![101, v[1] as u32];
            ids.resize(v[0] as usize + 2, 7);
            ids.truncate(MAX_TOKENS);
            batch.push(&ids, v[0] as usize + 2 > MAX_TOKENS);
            Ok(())
        }

        fn forward(&self, batch: &TokenBatch, _scratch: &mut Scratch) -> Result<Vec<Embedding>, ForwardError> {
            self.entered.fetch_add(1, Ordering::SeqCst);
            let mut open = self.gate.lock().expect("gate");
            while !*open {
                open = self.opened.wait(open).expect("gate");
            }
            drop(open);
            self.batches.lock().expect("batches").push(batch.len());
            (0..batch.len())
                .map(|i| {
                    let ids = batch.text(i);
                    assert!(ids[1] != 99, "fake forward panic");
                    Ok(Embedding { vector: vec![(ids.len() - 2) as f32, ids[1] as f32], truncated: batch.truncated(i) })
                })
                .collect()
        }
    }

    fn settings() -> PoolSettings {
        PoolSettings {
            max_batch_texts: 16,
            max_batch_tokens: 512,
            max_queued_texts: 64,
            max_queued_bytes: 1 << 20,
            max_request_tokens: 1 << 20,
            // The tests below hold the one worker inside a gated pass.
            workers: 1,
        }
    }

    fn texts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Waits (bounded) until `n` texts are queued behind the gated pass.
    async fn until_queued(pool: &InferencePool, n: usize) {
        for _ in 0..2000 {
            if pool.stats().queued_texts >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{n} texts never queued: {:?}", pool.stats());
    }

    /// Starts a pass that blocks on the fake's gate, and waits until the
    /// worker is inside it.
    async fn hold_worker(
        pool: &Arc<InferencePool>,
        fake: &Fake,
    ) -> tokio::task::JoinHandle<Result<Vec<Embedding>, PoolError>> {
        let first = {
            let pool = Arc::clone(pool);
            tokio::spawn(async move { pool.embed(texts(&["first request"])).await })
        };
        for _ in 0..2000 {
            if fake.entered.load(Ordering::SeqCst) >= 1 {
                return first;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the worker never started the first pass");
    }

    #[tokio::test]
    async fn with_two_workers_a_request_runs_while_another_pass_is_held() {
        // Arrange: worker one is held inside a pass.
        let fake = Fake::closed_gate();
        let pool = Arc::new(
            InferencePool::start(Arc::clone(&fake), PoolSettings { workers: 2, ..settings() }).expect("start"),
        );
        let first = hold_worker(&pool, &fake).await;

        // Act: a question arrives.
        let second = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.submit(texts(&["a question"]), Class::Question)?.answer().await })
        };

        // Assert: the other worker starts its pass before the first one ends.
        let mut both = false;
        for _ in 0..2000 {
            if fake.entered.load(Ordering::SeqCst) >= 2 {
                both = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(both, "the second pass never started beside the held one: {:?}", pool.stats());
        fake.open();
        let answer = second.await.expect("join").expect("answered");
        assert_eq!(answer[0].vector, expected("a question"));
        assert_eq!(first.await.expect("join").expect("answered")[0].vector, expected("first request"));
        assert_eq!(fake.batch_sizes(), [1, 1]);
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_pass_and_each_gets_its_own_vectors() {
        // Arrange
        let fake = Fake::closed_gate();
        let pool = Arc::new(InferencePool::start(Arc::clone(&fake), settings()).expect("start"));
        let first = hold_worker(&pool, &fake).await;
        let requests: Vec<Vec<String>> =
            (1..=7).map(|i| vec![format!("{} words", "w".repeat(i)), "and another text here".to_owned()]).collect();

        // Act
        let handles: Vec<_> = requests
            .iter()
            .cloned()
            .map(|t| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move { pool.embed(t).await })
            })
            .collect();
        until_queued(&pool, 14).await;
        fake.open();
        let answers = futures::future::join_all(handles).await;

        // Assert
        first.await.expect("join").expect("first request");
        for (request, answer) in requests.iter().zip(answers) {
            let got = answer.expect("join").expect("embedded");
            let want: Vec<Vec<f32>> = request.iter().map(|t| expected(t)).collect();
            assert_eq!(got.iter().map(|e| e.vector.clone()).collect::<Vec<_>>(), want, "request {request:?}");
        }
        assert_eq!(fake.batch_sizes(), vec![1, 14], "the 7 waiting requests ran as one pass");
        assert_eq!(pool.stats().largest_batch, 14);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_with_overloaded() {
        let fake = Fake::closed_gate();
        let limits = PoolSettings { max_queued_texts: 4, ..settings() };
        let pool = Arc::new(InferencePool::start(Arc::clone(&fake), limits).expect("start"));
        let first = hold_worker(&pool, &fake).await;
        let waiting = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.embed(texts(&["a", "b", "c"])).await })
        };
        until_queued(&pool, 3).await;

        let refused = pool.embed(texts(&["d", "e"])).await;

        assert!(matches!(refused, Err(PoolError::Overloaded { queued_texts: 3, .. })), "{refused:?}");
        fake.open();
        assert_eq!(waiting.await.expect("join").expect("queued request runs").len(), 3);
        first.await.expect("join").expect("first");
    }

    #[tokio::test]
    async fn a_request_larger_than_the_queue_is_refused_as_too_large() {
        let pool = InferencePool::start(Fake::open_gate(), PoolSettings { max_queued_bytes: 10, ..settings() })
            .expect("start");

        let err = pool.embed(texts(&["this text is longer than ten bytes"])).await;

        assert!(matches!(err, Err(PoolError::TooLarge { max_bytes: 10, .. })), "{err:?}");
    }

    #[tokio::test]
    async fn an_empty_text_fails_only_its_own_request() {
        let fake = Fake::closed_gate();
        let pool = Arc::new(InferencePool::start(Arc::clone(&fake), settings()).expect("start"));
        let first = hold_worker(&pool, &fake).await;
        let spawn = |t: Vec<String>| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.embed(t).await })
        };
        let good = spawn(texts(&["fine text"]));
        let bad = spawn(texts(&["fine", "   ", "ok", "\t"]));
        until_queued(&pool, 5).await;

        fake.open();

        let bad = bad.await.expect("join");
        assert!(
            matches!(&bad, Err(PoolError::EmptyTexts { indices }) if indices == &[1, 3]),
            "every empty text: {bad:?}"
        );
        assert_eq!(good.await.expect("join").expect("good")[0].vector, expected("fine text"));
        first.await.expect("join").expect("first");
    }

    #[tokio::test]
    async fn a_panic_in_a_pass_fails_that_batch_and_the_worker_goes_on() {
        let pool = InferencePool::start(Fake::open_gate(), settings()).expect("start");
        // 99-letter first word: the fake's forward panics on it.
        let poison = format!("{} boom", "x".repeat(99));

        let failed = pool.embed(vec![poison]).await;
        let tokenizer_failed = pool.embed(texts(&["tokenizer-panic please"])).await;
        let after = pool.embed(texts(&["still working"])).await;

        assert!(matches!(failed, Err(PoolError::WorkerFailed)), "{failed:?}");
        assert!(matches!(tokenizer_failed, Err(PoolError::WorkerFailed)), "{tokenizer_failed:?}");
        assert_eq!(after.expect("the worker survived")[0].vector, expected("still working"));
    }

    #[tokio::test]
    async fn a_big_request_is_split_into_passes_within_both_budgets_and_keeps_its_order() {
        let fake = Fake::open_gate();
        // 40 texts; 16 per pass by count; 100 words each = 102 tokens, so
        // at most 5 per 512-token pass.
        let pool = InferencePool::start(Arc::clone(&fake), settings()).expect("start");
        let many: Vec<String> = (0..40).map(|i| format!("{} {}", "y".repeat(i + 1), "w ".repeat(99))).collect();

        let got = pool.embed(many.clone()).await.expect("embedded");

        let want: Vec<Vec<f32>> = many.iter().map(|t| expected(t)).collect();
        assert_eq!(got.into_iter().map(|e| e.vector).collect::<Vec<_>>(), want);
        let sizes = fake.batch_sizes();
        assert!(sizes.iter().all(|&n| n <= 5), "token budget: {sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 40);
    }

    #[tokio::test]
    async fn a_closed_pool_refuses_and_no_texts_is_no_work() {
        let fake = Fake::open_gate();
        let pool = InferencePool::start(Arc::clone(&fake), settings()).expect("start");

        let nothing = pool.embed(Vec::new()).await;
        pool.close();
        let closed = pool.embed(texts(&["late"])).await;

        assert!(nothing.expect("no texts").is_empty());
        assert!(matches!(closed, Err(PoolError::Closed)), "{closed:?}");
        assert!(fake.batch_sizes().is_empty());
    }

    #[test]
    fn join_lets_queued_requests_finish_first() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let pool = Arc::new(InferencePool::start(Fake::open_gate(), settings()).expect("start"));
        let answer = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || rt.block_on(pool.embed(texts(&["one", "two"]))))
        };
        while pool.stats().texts < 2 && !answer.is_finished() {
            std::thread::yield_now();
        }

        pool.join();

        assert_eq!(answer.join().expect("thread").expect("answered").len(), 2);
    }

    /// A bulk request of `n` texts of 100 words (102 tokens each: 5 per 512-token pass).
    fn bulk(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{} {}", "b".repeat(i % 50 + 1), "w ".repeat(99))).collect()
    }

    #[tokio::test]
    async fn issue_22_a_question_waits_for_the_running_bulk_pass_only_not_the_whole_bulk_request() {
        // Arrange: a bulk request of 40 texts (8 passes of 5), held inside its first pass.
        let fake = Fake::closed_gate();
        let pool = Arc::new(InferencePool::start(Arc::clone(&fake), settings()).expect("start"));
        let bulk_answer = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { pool.embed(bulk(40)).await })
        };
        for _ in 0..2000 {
            if fake.entered.load(Ordering::SeqCst) >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }

        // Act: a question arrives while the bulk request's first pass runs.
        let mut ticket = pool.submit(texts(&["a question"]), Class::Question).expect("admitted");
        until_queued(&pool, 1).await;
        fake.open();
        ticket.started().await;
        let answer = ticket.answer().await.expect("answered");

        // Assert: the question ran in the second pass, alone; the bulk work went on after it.
        assert_eq!(answer[0].vector, expected("a question"));
        let sizes = fake.batch_sizes();
        assert_eq!(
            sizes.get(..2),
            Some(&[5, 1][..]),
            "the question's pass comes right after the running one: {sizes:?}"
        );
        let got = bulk_answer.await.expect("join").expect("bulk answered");
        assert_eq!(
            got.into_iter().map(|e| e.vector).collect::<Vec<_>>(),
            bulk(40).iter().map(|t| expected(t)).collect::<Vec<_>>()
        );
        assert_eq!(fake.batch_sizes().iter().sum::<usize>(), 41);
    }

    #[tokio::test]
    async fn issue_22_a_bulk_request_over_the_word_piece_bound_is_refused_before_any_pass() {
        // Arrange: 1,000 word pieces per request at most; 10 texts of 102 pieces.
        let fake = Fake::open_gate();
        let limits = PoolSettings { max_request_tokens: 1000, ..settings() };
        let pool = InferencePool::start(Arc::clone(&fake), limits).expect("start");

        // Act
        let refused = pool.embed(bulk(10)).await;
        let fits = pool.embed(bulk(9)).await;

        // Assert
        assert!(matches!(refused, Err(PoolError::TooManyTokens { tokens: 1020, max: 1000 })), "{refused:?}");
        assert_eq!(fits.expect("918 pieces fit").len(), 9);
        assert_eq!(fake.batch_sizes().iter().sum::<usize>(), 9, "the refused request never reached the model");
    }

    #[tokio::test]
    async fn issue_22_a_question_withdrawn_before_its_pass_is_never_run() {
        // Arrange: the worker is held in a pass; a question waits behind it.
        let fake = Fake::closed_gate();
        let pool = Arc::new(InferencePool::start(Arc::clone(&fake), settings()).expect("start"));
        let first = hold_worker(&pool, &fake).await;
        let mut ticket = pool.submit(texts(&["given up on"]), Class::Question).expect("admitted");
        let not_started = futures::FutureExt::now_or_never(ticket.started());

        // Act: the caller's wait budget passes (it drops the ticket), then the pass ends.
        drop(ticket);
        fake.open();
        first.await.expect("join").expect("first");
        let after = pool.embed(texts(&["later"])).await.expect("later");

        // Assert
        assert!(not_started.is_none(), "the question had not started while the worker was busy");
        assert_eq!(after[0].vector, expected("later"));
        assert_eq!(fake.batch_sizes(), vec![1, 1], "the withdrawn question took no pass");
    }
}
