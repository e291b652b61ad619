//! The seam between HTTP and the model: the interface of
//! `hearth_engine::batch` (one engine thread per model; handlers queue a
//! request and read events from a channel; dropping the receiver cancels).
//!
//! Until the batching engine is on main this module carries a serial
//! implementation of the same interface over [`hearth_engine::generate`]:
//! one engine thread, one KV cache, requests served in arrival order, a
//! bounded queue. Its `embed` needs hidden states that only the batching
//! engine exposes, so it answers [`EngineError::Unsupported`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use hearth_engine::{generate, GenParams, GenStats};
use hearth_model::{KvType, Model, State};
use hearth_ops::ThreadPool;
use hearth_sample::FinishReason;
use hearth_tokenizer::Tokenizer;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// Constrained decoding (the grammar crate implements it for JSON schemas).
pub trait Constraint: Send {
    /// Sets the logits of tokens that may not come next to -inf.
    fn mask(&mut self, logits: &mut [f32]);
    /// Advances past the chosen token.
    fn accept(&mut self, token: u32);
    /// True when nothing but an end-of-generation token may follow.
    fn is_finished(&self) -> bool;
}

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Sequences decoded together.
    pub n_parallel: usize,
    /// Context per slot.
    pub n_ctx: usize,
    pub kv: KvType,
    pub threads: usize,
    /// Requests waiting for a slot beyond which `submit` fails.
    pub max_queue: usize,
}

pub struct GenRequest {
    /// Already tokenized (BOS included).
    pub prompt: Vec<u32>,
    pub params: GenParams,
    pub constraint: Option<Box<dyn Constraint>>,
}

#[derive(Debug)]
pub enum Event {
    /// Streamed text, safe to show.
    Text(String),
    Done {
        finish: FinishReason,
        stats: GenStats,
        tokens: Vec<u32>,
        prompt_tokens: usize,
    },
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the server is busy: {queued} requests are already waiting")]
    QueueFull { queued: usize },
    #[error("the prompt is {n_prompt} tokens but the context holds {n_ctx}")]
    PromptTooLong { n_prompt: usize, n_ctx: usize },
    #[error("the model's engine has stopped")]
    Stopped,
    #[error("{0}")]
    Unsupported(String),
}

/// Counters of one engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineMetrics {
    pub queued: usize,
    pub active: usize,
    pub n_parallel: usize,
    pub prompt_tokens: u64,
    pub generated_tokens: u64,
}

struct Job {
    req: GenRequest,
    tx: UnboundedSender<Event>,
}

struct Shared {
    queued: AtomicUsize,
    active: AtomicUsize,
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    stop: AtomicBool,
}

/// A cheap handle to a model's engine thread.
#[derive(Clone)]
pub struct Engine {
    tx: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
    shared: Arc<Shared>,
    cfg: EngineConfig,
}

impl Engine {
    pub fn start(
        model: Arc<Model>,
        tokenizer: Arc<Tokenizer>,
        cfg: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let shared = Arc::new(Shared {
            queued: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            prompt_tokens: AtomicU64::new(0),
            generated_tokens: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let sh = shared.clone();
        let (n_ctx, kv, threads) = (cfg.n_ctx, cfg.kv, cfg.threads.max(1));
        std::thread::Builder::new()
            .name("hearth-engine".into())
            .spawn(move || {
                let mut state = State::new(&model, n_ctx, kv, Arc::new(ThreadPool::new(threads)));
                while let Ok(job) = rx.recv() {
                    sh.queued.fetch_sub(1, Ordering::SeqCst);
                    if job.tx.is_closed() || sh.stop.load(Ordering::SeqCst) {
                        continue;
                    }
                    sh.active.fetch_add(1, Ordering::SeqCst);
                    run_job(&model, &mut state, &tokenizer, job, &sh);
                    sh.active.fetch_sub(1, Ordering::SeqCst);
                }
            })
            .map_err(|e| EngineError::Unsupported(format!("starting the engine thread: {e}")))?;
        Ok(Engine {
            tx: Arc::new(Mutex::new(Some(tx))),
            shared,
            cfg,
        })
    }

    /// Queues a generation; dropping the receiver cancels it.
    pub fn submit(&self, req: GenRequest) -> Result<UnboundedReceiver<Event>, EngineError> {
        if req.prompt.len() >= self.cfg.n_ctx {
            return Err(EngineError::PromptTooLong {
                n_prompt: req.prompt.len(),
                n_ctx: self.cfg.n_ctx,
            });
        }
        if req.constraint.is_some() {
            return Err(EngineError::Unsupported(
                "constrained decoding needs the batching engine".into(),
            ));
        }
        let queued = self.shared.queued.load(Ordering::SeqCst);
        let busy = self.shared.active.load(Ordering::SeqCst) >= self.cfg.n_parallel.max(1);
        if busy && queued >= self.cfg.max_queue {
            return Err(EngineError::QueueFull { queued });
        }
        let (tx, rx) = unbounded_channel();
        let guard = self.tx.lock().map_err(|_| EngineError::Stopped)?;
        let sender = guard.as_ref().ok_or(EngineError::Stopped)?;
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        if sender.send(Job { req, tx }).is_err() {
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(EngineError::Stopped);
        }
        Ok(rx)
    }

    /// Mean-pooled, L2-normalised final hidden states, one per input.
    pub async fn embed(&self, _inputs: Vec<Vec<u32>>) -> Result<Vec<Vec<f32>>, EngineError> {
        Err(EngineError::Unsupported(
            "embeddings need the batching engine's hidden states, which this build lacks".into(),
        ))
    }

    pub fn metrics(&self) -> EngineMetrics {
        EngineMetrics {
            queued: self.shared.queued.load(Ordering::SeqCst),
            active: self.shared.active.load(Ordering::SeqCst),
            n_parallel: self.cfg.n_parallel,
            prompt_tokens: self.shared.prompt_tokens.load(Ordering::SeqCst),
            generated_tokens: self.shared.generated_tokens.load(Ordering::SeqCst),
        }
    }

    pub fn n_ctx(&self) -> usize {
        self.cfg.n_ctx
    }

    /// Stops the thread once the running sequence is cancelled.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
    }
}

fn run_job(model: &Model, state: &mut State, tok: &Tokenizer, job: Job, sh: &Shared) {
    let cancel = AtomicBool::new(false);
    let tx = job.tx;
    let result = generate(
        model,
        state,
        tok,
        &job.req.prompt,
        &job.req.params,
        &cancel,
        &mut |text| {
            if tx.send(Event::Text(text.to_string())).is_err() || sh.stop.load(Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            }
        },
    );
    match result {
        Ok(g) => {
            sh.prompt_tokens
                .fetch_add(g.stats.prompt_tokens as u64, Ordering::SeqCst);
            sh.generated_tokens
                .fetch_add(g.stats.gen_tokens as u64, Ordering::SeqCst);
            let _ = tx.send(Event::Done {
                finish: g.finish,
                prompt_tokens: g.stats.prompt_tokens,
                stats: g.stats,
                tokens: g.tokens,
            });
        }
        Err(e) => {
            state.clear();
            let _ = tx.send(Event::Error(e.to_string()));
        }
    }
}
