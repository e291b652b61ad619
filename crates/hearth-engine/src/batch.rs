//! The serving engine: one thread per model owns its sequences' KV caches
//! and advances every active sequence together, one forward pass per step
//! (continuous batching).
//!
//! Callers never touch the model: [`Engine::submit`] queues a request and
//! returns a channel of [`Event`]s. Between steps the engine thread takes
//! new requests into free slots — the slot whose cache shares the longest
//! prefix with the prompt, so a continued conversation is not evaluated
//! again — and evaluates prompts in chunks alongside the sequences that are
//! decoding, so a long prompt never stalls the others for long. Dropping the
//! receiver cancels the sequence at the next step.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use hearth_model::{KvType, Logits, Model, SeqInput, State};
use hearth_ops::ThreadPool;
use hearth_sample::{Constraint, FinishReason, TokenLogprob};
use hearth_tokenizer::Tokenizer;
use tokio::sync::{mpsc as tmpsc, oneshot};

use crate::embed::{timed, EmbedJob, Pace};
use crate::step::{Decode, Emit, Flow};
use crate::{EngineError, GenParams, GenStats};

/// How an engine runs its model.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Sequences decoded together (slots), each with its own KV cache.
    pub n_parallel: usize,
    /// Context of each slot.
    pub n_ctx: usize,
    pub kv: KvType,
    pub threads: usize,
    /// Requests that may wait for a slot; beyond it `submit` answers
    /// [`EngineError::QueueFull`].
    pub max_queue: usize,
    /// Batch-invariant evaluation ([`State::set_batch_invariant`]): a
    /// sequence's tokens come out the same whether it ran alone, beside
    /// others, or after a cached prefix; prompts evaluate more slowly.
    pub deterministic: bool,
}

/// One generation to run.
pub struct GenRequest {
    /// The prompt, tokenized (BOS and template included).
    pub prompt: Vec<u32>,
    pub params: GenParams,
    pub constraint: Option<Box<dyn Constraint>>,
}

/// What a request's channel carries.
#[derive(Debug)]
pub enum Event {
    /// Text safe to show (incomplete characters and possible stop strings
    /// held back).
    Text(String),
    /// A generated token's log-probabilities (only when
    /// [`GenParams::logprobs`] asks), sent before the token's text.
    Logprob(TokenLogprob),
    /// The last event of a successful generation.
    Done {
        finish: FinishReason,
        stats: GenStats,
        tokens: Vec<u32>,
        prompt_tokens: usize,
    },
    Error(String),
}

/// Counters of an engine, for monitoring.
#[derive(Clone, Debug, Default)]
pub struct EngineMetrics {
    pub n_parallel: usize,
    /// Requests waiting for a slot.
    pub queued: usize,
    /// Sequences in a slot (evaluating their prompt or decoding).
    pub active: usize,
    pub prompt_tokens: u64,
    /// Prompt tokens found in a slot's cache and not evaluated again.
    pub cached_tokens: u64,
    pub generated_tokens: u64,
    /// Forward passes run, and the sequences they carried in all.
    pub steps: u64,
    pub step_sequences: u64,
}

enum Cmd {
    Gen(Job),
    Embed(EmbedJob),
}

struct Job {
    /// Boxed: the sampling settings make a request large, and a `Cmd` is moved
    /// through the channel.
    req: Box<GenRequest>,
    tx: tmpsc::UnboundedSender<Event>,
}

#[derive(Default)]
struct Counters {
    queued: AtomicUsize,
    active: AtomicUsize,
    prompt_tokens: AtomicU64,
    cached_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    steps: AtomicU64,
    step_sequences: AtomicU64,
}

struct Inner {
    cfg: EngineConfig,
    tx: Mutex<Option<mpsc::Sender<Cmd>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(h) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
    }
}

/// A handle to a model's engine thread; clones share it. The thread ends
/// when [`Engine::shutdown`] is called or the last handle is dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Allocates the slots' caches and starts the engine thread, with a
    /// thread pool of its own (`cfg.threads` wide).
    pub fn start(
        model: Arc<Model>,
        tokenizer: Arc<Tokenizer>,
        cfg: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let pool = Arc::new(ThreadPool::new(cfg.threads.max(1)));
        Self::start_with_pool(model, tokenizer, cfg, pool)
    }

    /// [`Engine::start`] on a pool shared with other engines: their jobs
    /// take turns on the same threads, so several loaded models never spin
    /// on more cores than the pool has. `cfg.threads` must be the pool's width.
    pub fn start_with_pool(
        model: Arc<Model>,
        tokenizer: Arc<Tokenizer>,
        cfg: EngineConfig,
        pool: Arc<ThreadPool>,
    ) -> Result<Engine, EngineError> {
        if cfg.n_parallel == 0 || cfg.n_ctx < 2 || cfg.threads == 0 {
            return Err(EngineError::BadConfig(format!(
                "parallel {}, context {}, threads {}: each must be at least 1 (context 2)",
                cfg.n_parallel, cfg.n_ctx, cfg.threads
            )));
        }
        if cfg.threads != pool.n_threads() {
            return Err(EngineError::BadConfig(format!(
                "threads {} but the shared pool has {}",
                cfg.threads,
                pool.n_threads()
            )));
        }
        let slots = (0..cfg.n_parallel)
            .map(|_| {
                let mut state = State::try_new(&model, cfg.n_ctx, cfg.kv, Arc::clone(&pool))?;
                state.set_batch_invariant(cfg.deterministic);
                Ok(Slot { state, seq: None })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut worker = Worker {
            model,
            tok: tokenizer,
            pool,
            cfg: cfg.clone(),
            slots,
            waiting: VecDeque::new(),
            embeds: VecDeque::new(),
            spare_lanes: Vec::new(),
            pace: Pace::new(),
            rx,
            counters: Arc::clone(&counters),
            stop: Arc::clone(&stop),
        };
        let thread = std::thread::Builder::new()
            .name("hearth-engine".into())
            .spawn(move || worker.run())
            .map_err(|e| EngineError::BadConfig(format!("cannot start the engine thread: {e}")))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                cfg,
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                counters,
                stop,
            }),
        })
    }

    fn send(&self, cmd: Cmd) -> Result<(), EngineError> {
        let guard = self.inner.tx.lock().map_err(|_| EngineError::Stopped)?;
        let tx = guard.as_ref().ok_or(EngineError::Stopped)?;
        tx.send(cmd).map_err(|_| EngineError::Stopped)
    }

    /// Counts a request as waiting, or refuses it when the free slots and
    /// `max_queue` places are taken (generations and embeddings alike).
    fn take_queue_place(&self) -> Result<(), EngineError> {
        let c = &self.inner.counters;
        let free = self
            .inner
            .cfg
            .n_parallel
            .saturating_sub(c.active.load(Ordering::SeqCst));
        if c.queued.fetch_add(1, Ordering::SeqCst) >= self.inner.cfg.max_queue + free {
            c.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(EngineError::QueueFull {
                max_queue: self.inner.cfg.max_queue,
            });
        }
        Ok(())
    }

    /// Queues a generation. Events arrive on the returned receiver;
    /// dropping it cancels the sequence within one step.
    pub fn submit(&self, req: GenRequest) -> Result<tmpsc::UnboundedReceiver<Event>, EngineError> {
        if req.prompt.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        if req.prompt.len() >= self.inner.cfg.n_ctx {
            return Err(EngineError::PromptTooLong {
                n_prompt: req.prompt.len(),
                n_ctx: self.inner.cfg.n_ctx,
            });
        }
        hearth_sample::Sampler::new(&req.params.sampler, self.inner.cfg.n_ctx)?;
        self.take_queue_place()?;
        let c = &self.inner.counters;
        let (tx, rx) = tmpsc::unbounded_channel();
        if let Err(e) = self.send(Cmd::Gen(Job {
            req: Box::new(req),
            tx,
        })) {
            c.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        Ok(rx)
    }

    /// Mean-pooled, unit-length final hidden states, one vector per input.
    /// The request waits in the queue like a generation (counted against
    /// `max_queue`: [`EngineError::QueueFull`] beyond it) and is evaluated
    /// in pieces between decode steps, so running streams keep flowing.
    /// Dropping the future cancels it at the next piece.
    pub async fn embed(&self, inputs: Vec<Vec<u32>>) -> Result<Vec<Vec<f32>>, EngineError> {
        for inp in &inputs {
            if inp.is_empty() {
                return Err(EngineError::EmptyPrompt);
            }
            if inp.len() > self.inner.cfg.n_ctx {
                return Err(EngineError::PromptTooLong {
                    n_prompt: inp.len(),
                    n_ctx: self.inner.cfg.n_ctx,
                });
            }
        }
        self.take_queue_place()?;
        let c = &self.inner.counters;
        let (tx, rx) = oneshot::channel();
        if let Err(e) = self.send(Cmd::Embed(EmbedJob::new(inputs, tx))) {
            c.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(e);
        }
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    pub fn metrics(&self) -> EngineMetrics {
        let c = &self.inner.counters;
        EngineMetrics {
            n_parallel: self.inner.cfg.n_parallel,
            queued: c.queued.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
            prompt_tokens: c.prompt_tokens.load(Ordering::Relaxed),
            cached_tokens: c.cached_tokens.load(Ordering::Relaxed),
            generated_tokens: c.generated_tokens.load(Ordering::Relaxed),
            steps: c.steps.load(Ordering::Relaxed),
            step_sequences: c.step_sequences.load(Ordering::Relaxed),
        }
    }

    /// Context of each slot.
    pub fn n_ctx(&self) -> usize {
        self.inner.cfg.n_ctx
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    /// Ends the engine: running and queued requests get an error event,
    /// the thread exits and the caches are freed. Later calls to `submit`
    /// answer [`EngineError::Stopped`].
    pub fn shutdown(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Ok(mut tx) = self.inner.tx.lock() {
            tx.take();
        }
        if let Some(h) = self.inner.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
    }
}

/// A sequence in a slot.
struct Seq {
    tx: tmpsc::UnboundedSender<Event>,
    decode: Decode,
    constraint: Option<Box<dyn Constraint>>,
    /// Prompt tokens not yet evaluated.
    pending: Vec<u32>,
    /// The sampled token to evaluate next step.
    next: Option<u32>,
    stats: GenStats,
    started: Instant,
    prompt_done: Option<Instant>,
}

struct Slot {
    state: State,
    seq: Option<Seq>,
}

struct Worker {
    model: Arc<Model>,
    tok: Arc<Tokenizer>,
    pool: Arc<ThreadPool>,
    cfg: EngineConfig,
    slots: Vec<Slot>,
    waiting: VecDeque<Job>,
    /// Embedding requests, the first one in progress.
    embeds: VecDeque<EmbedJob>,
    /// The states the last embedding request evaluated its inputs in,
    /// kept for the next one.
    spare_lanes: Vec<State>,
    pace: Pace,
    rx: mpsc::Receiver<Cmd>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

/// What one slot does in a step: which tokens it feeds.
struct Plan {
    slot: usize,
    tokens: Vec<u32>,
    /// Its logits are wanted (it decodes, or its prompt ends here).
    sample: bool,
}

impl Worker {
    fn run(&mut self) {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let busy = !self.waiting.is_empty()
                || !self.embeds.is_empty()
                || self.slots.iter().any(|s| s.seq.is_some());
            // Take commands: block when idle, else just what has arrived.
            let first = if busy {
                match self.rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(mpsc::TryRecvError::Empty) => None,
                    Err(mpsc::TryRecvError::Disconnected) => break,
                }
            } else {
                match self.rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => break,
                }
            };
            if let Some(c) = first {
                self.command(c);
                while let Ok(c) = self.rx.try_recv() {
                    self.command(c);
                }
            }
            self.admit();
            self.drop_cancelled();
            // A bug that panics inside one step fails the sequences in it,
            // not the engine: their caches are dropped and serving goes on.
            let decoding = self.slots.iter().any(|s| s.seq.is_some());
            let (stepped, took) =
                timed(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step())));
            if stepped.is_err() {
                self.fail_active("internal error while generating (the request was stopped)");
            } else if decoding {
                self.pace.stepped(took);
            }
            self.embed_piece();
        }
        for job in self.embeds.drain(..) {
            job.finish(Some(EngineError::Stopped), &mut Vec::new());
        }
        for slot in &mut self.slots {
            if let Some(seq) = slot.seq.take() {
                let _ = seq.tx.send(Event::Error("the model was unloaded".into()));
            }
        }
        for job in self.waiting.drain(..) {
            let _ = job.tx.send(Event::Error("the model was unloaded".into()));
        }
        self.counters.active.store(0, Ordering::Relaxed);
        self.counters.queued.store(0, Ordering::Relaxed);
    }

    /// Ends every sequence in a slot with an error and clears its cache.
    fn fail_active(&mut self, why: &str) {
        for slot in &mut self.slots {
            if let Some(seq) = slot.seq.take() {
                self.counters.active.fetch_sub(1, Ordering::SeqCst);
                let _ = seq.tx.send(Event::Error(why.to_string()));
            }
            slot.state.clear();
        }
    }

    fn command(&mut self, c: Cmd) {
        match c {
            Cmd::Gen(job) => self.waiting.push_back(job),
            Cmd::Embed(job) => self.embeds.push_back(job),
        }
    }

    /// One piece of the first embedding request: about half a decode step's
    /// worth of tokens while sequences decode, a micro-batch otherwise.
    fn embed_piece(&mut self) {
        while self.embeds.front().is_some_and(EmbedJob::cancelled) {
            self.embeds.pop_front();
            self.counters.queued.fetch_sub(1, Ordering::SeqCst);
        }
        let Some(job) = self.embeds.front_mut() else {
            return;
        };
        let decoding = self.slots.iter().any(|s| s.seq.is_some());
        let n_ubatch = self
            .slots
            .first()
            .map_or(hearth_model::UBATCH, |s| s.state.n_ubatch());
        let budget = self.pace.budget(decoding, n_ubatch);
        let (model, pool, kv, n_ctx) = (&*self.model, &self.pool, self.cfg.kv, self.cfg.n_ctx);
        let det = self.cfg.deterministic;
        let spare = &mut self.spare_lanes;
        let (result, took) = timed(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                job.advance(model, (pool, spare), (kv, n_ctx, det), budget)
            }))
        });
        let done = match result {
            Ok(Ok((fed, done))) => {
                self.pace.embedded(fed, took);
                self.counters
                    .prompt_tokens
                    .fetch_add(fed as u64, Ordering::Relaxed);
                done.then_some(None)
            }
            Ok(Err(e)) => Some(Some(e)),
            Err(_) => Some(Some(EngineError::BadConfig(
                "internal error while embedding (the request was stopped)".into(),
            ))),
        };
        if let Some(err) = done {
            if let Some(job) = self.embeds.pop_front() {
                self.counters.queued.fetch_sub(1, Ordering::SeqCst);
                job.finish(err, &mut self.spare_lanes);
            }
        }
    }

    /// Moves waiting requests into free slots, each into the one whose
    /// cache shares the longest prefix with its prompt.
    fn admit(&mut self) {
        while let Some(job) = self.waiting.front() {
            if job.tx.is_closed() {
                self.waiting.pop_front();
                self.counters.queued.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            let prompt = &job.req.prompt;
            let best = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.seq.is_none())
                .map(|(i, s)| {
                    let common = s
                        .state
                        .tokens()
                        .iter()
                        .zip(prompt)
                        .take_while(|(a, b)| a == b)
                        .count();
                    (common, std::cmp::Reverse(i))
                })
                .max();
            let Some((_, std::cmp::Reverse(i))) = best else {
                break;
            };
            let Some(job) = self.waiting.pop_front() else {
                break;
            };
            self.counters.active.fetch_add(1, Ordering::SeqCst);
            self.counters.queued.fetch_sub(1, Ordering::SeqCst);
            match self.start_seq(i, job) {
                Ok(()) => {}
                Err((tx, e)) => {
                    self.counters.active.fetch_sub(1, Ordering::SeqCst);
                    let _ = tx.send(Event::Error(e.to_string()));
                }
            }
        }
    }

    fn start_seq(
        &mut self,
        i: usize,
        job: Job,
    ) -> Result<(), (tmpsc::UnboundedSender<Event>, EngineError)> {
        let Job { req, tx } = job;
        let req = *req;
        let slot = &mut self.slots[i];
        let prompt = req.prompt;
        let decode = match Decode::new(&req.params, &self.tok, self.cfg.n_ctx, &prompt) {
            Ok(d) => d,
            Err(e) => return Err((tx, e.into())),
        };
        let common = slot
            .state
            .tokens()
            .iter()
            .zip(&prompt)
            .take_while(|(a, b)| a == b)
            .count();
        // At least the last prompt token is evaluated, for its logits.
        let reuse = slot.state.truncate(common.min(prompt.len() - 1));
        self.counters
            .prompt_tokens
            .fetch_add(prompt.len() as u64, Ordering::Relaxed);
        self.counters
            .cached_tokens
            .fetch_add(reuse as u64, Ordering::Relaxed);
        let stats = GenStats {
            prompt_tokens: prompt.len(),
            cached_tokens: reuse,
            ..Default::default()
        };
        slot.seq = Some(Seq {
            tx,
            decode,
            constraint: req.constraint,
            pending: prompt[reuse..].to_vec(),
            next: None,
            stats,
            started: Instant::now(),
            prompt_done: None,
        });
        Ok(())
    }

    fn drop_cancelled(&mut self) {
        for slot in &mut self.slots {
            if slot.seq.as_ref().is_some_and(|s| s.tx.is_closed()) {
                slot.seq = None;
                self.counters.active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// One forward pass over every active slot, then sampling.
    fn step(&mut self) {
        let budget_max = self
            .slots
            .first()
            .map_or(hearth_model::UBATCH, |s| s.state.n_ubatch());
        let mut budget = budget_max;
        let mut plans = Vec::new();
        // Decoding sequences first: one token each.
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(t) = slot.seq.as_ref().and_then(|s| s.next) {
                if budget > 0 {
                    plans.push(Plan {
                        slot: i,
                        tokens: vec![t],
                        sample: true,
                    });
                    budget -= 1;
                }
            }
        }
        // Then prompts, in chunks that fill the rest of the micro-batch.
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let Some(seq) = slot.seq.as_mut() else {
                continue;
            };
            if seq.pending.is_empty() || budget == 0 {
                continue;
            }
            let take = seq.pending.len().min(budget);
            let tokens: Vec<u32> = seq.pending.drain(..take).collect();
            budget -= take;
            plans.push(Plan {
                slot: i,
                sample: seq.pending.is_empty(),
                tokens,
            });
        }
        if plans.is_empty() {
            return;
        }
        let result = {
            let mut inputs: Vec<SeqInput<'_>> = Vec::with_capacity(plans.len());
            for (i, slot) in self.slots.iter_mut().enumerate() {
                // Plans are not in slot order (decoders first); find this slot's.
                let Some(p) = plans.iter().find(|p| p.slot == i) else {
                    continue;
                };
                inputs.push(SeqInput {
                    state: &mut slot.state,
                    tokens: &p.tokens,
                    logits: if p.sample { Logits::Last } else { Logits::None },
                });
            }
            self.model.forward_batch(&mut inputs)
        };
        self.counters.steps.fetch_add(1, Ordering::Relaxed);
        self.counters
            .step_sequences
            .fetch_add(plans.len() as u64, Ordering::Relaxed);
        if let Err(e) = result {
            for p in &plans {
                if let Some(seq) = self.slots[p.slot].seq.take() {
                    self.counters.active.fetch_sub(1, Ordering::SeqCst);
                    let _ = seq.tx.send(Event::Error(e.to_string()));
                }
                self.slots[p.slot].state.clear();
            }
            return;
        }
        let sampled: Vec<usize> = plans.iter().filter(|p| p.sample).map(|p| p.slot).collect();
        self.sample(&sampled);
    }

    /// Samples the next token of every sequence in `slots` (whose logits
    /// this step computed) and streams its text, spread over the pool when
    /// there are several (each sequence's sampler, decoder and stop matcher
    /// are its own); then ends the sequences that are done, in slot order.
    fn sample(&mut self, slots: &[usize]) {
        let now = Instant::now();
        let (model, tok) = (&*self.model, &*self.tok);
        let cells: Vec<Mutex<(&mut Slot, Option<Finish>)>> = self
            .slots
            .iter_mut()
            .enumerate()
            .filter(|(i, s)| slots.contains(i) && s.seq.is_some())
            .map(|(_, s)| Mutex::new((s, None)))
            .collect();
        let pick = |cell: &Mutex<(&mut Slot, Option<Finish>)>| {
            let mut guard = cell.lock().unwrap_or_else(|e| e.into_inner());
            let (slot, finish) = &mut *guard;
            let Slot { state, seq } = &mut **slot;
            if let Some(seq) = seq.as_mut() {
                if seq.prompt_done.is_none() {
                    seq.prompt_done = Some(now);
                    seq.stats.prompt_eval = now - seq.started;
                }
                *finish = next_token(seq, state, model, tok);
            }
        };
        if cells.len() > 1 {
            self.pool.run(&|i, nt| {
                for cell in &cells[hearth_ops::split(cells.len(), i, nt)] {
                    pick(cell);
                }
            });
        } else {
            cells.iter().for_each(pick);
        }
        for cell in cells {
            let (slot, finish) = cell.into_inner().unwrap_or_else(|e| e.into_inner());
            if let Some(finish) = finish {
                finish_seq(slot, finish, &self.counters);
            }
        }
    }
}

/// How a sequence ended.
type Finish = Result<FinishReason, EngineError>;

/// Ends the sequence in `slot`: the held-back text, the counters, then
/// `Done` (or the error).
fn finish_seq(slot: &mut Slot, finish: Finish, counters: &Counters) {
    let Some(mut seq) = slot.seq.take() else {
        return;
    };
    let finish = match finish {
        Ok(f) => f,
        Err(e) => {
            counters.active.fetch_sub(1, Ordering::SeqCst);
            let _ = seq.tx.send(Event::Error(e.to_string()));
            return;
        }
    };
    seq.stats.gen_eval = seq
        .prompt_done
        .map_or_else(Default::default, |t| t.elapsed());
    let tx = seq.tx.clone();
    seq.decode.finish(&mut |e| send(&tx, e));
    seq.stats.gen_tokens = seq.decode.out.len();
    counters
        .generated_tokens
        .fetch_add(seq.decode.out.len() as u64, Ordering::Relaxed);
    // Counters first, so whoever sees the last event sees them settled.
    counters.active.fetch_sub(1, Ordering::SeqCst);
    let _ = seq.tx.send(Event::Done {
        finish,
        prompt_tokens: seq.stats.prompt_tokens,
        stats: seq.stats,
        tokens: seq.decode.out,
    });
}

/// Sends what a step emitted to the request's channel.
fn send(tx: &tmpsc::UnboundedSender<Event>, e: Emit) {
    let _ = tx.send(match e {
        Emit::Text(t) => Event::Text(t),
        Emit::Logprob(l) => Event::Logprob(l),
    });
}

/// Picks the next token from the state's logits (the shared step,
/// [`crate::step`]); `Some` when the sequence ends here.
fn next_token(seq: &mut Seq, st: &mut State, model: &Model, tok: &Tokenizer) -> Option<Finish> {
    seq.next = None;
    let tx = &seq.tx;
    let flow = seq
        .decode
        .step(st, model, tok, seq.constraint.as_deref_mut(), &mut |e| {
            send(tx, e)
        });
    seq.stats.gen_tokens = seq.decode.out.len();
    match flow {
        Ok(Flow::Continue(id)) => {
            seq.next = Some(id);
            None
        }
        Ok(Flow::Finish(f)) => Some(Ok(f)),
        Err(e) => Some(Err(e)),
    }
}
