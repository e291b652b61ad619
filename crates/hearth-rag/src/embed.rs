//! The seams retrieval is built on: an [`Embedder`] turns texts into
//! vectors, a [`Reranker`] re-scores passages for a query. [`ModelEmbedder`]
//! embeds with a hearth model through the engine's embedding path (the one
//! `/api/embed` serves), texts of a batch evaluated side by side: for an
//! encoder such as all-MiniLM (the default, [`DEFAULT_EMBED_MODEL`]) the
//! pooling its file names (mean, CLS or last), for a decoder the mean of
//! its final hidden states; unit length either way.

use std::path::Path;
use std::sync::Arc;

use hearth_engine::batch::{Engine, EngineConfig};
use hearth_model::{KvType, Model};
use hearth_tokenizer::Tokenizer;

use crate::{RagError, Result};

/// The embedding model a new knowledge base gets when none is named: the
/// store's all-MiniLM-L6-v2 (scripts/fetch-models.sh fetches it).
pub const DEFAULT_EMBED_MODEL: &str = "all-minilm";

/// Texts in, one unit-length vector per text out.
pub trait Embedder {
    /// The name recorded in a knowledge base; searching it needs the same.
    fn model_name(&self) -> &str;
    fn dim(&self) -> usize;
    /// Most tokens one input may have.
    fn max_tokens(&self) -> usize;
    /// Tokens of `text` as the model sees it (chunk sizes are counted in them).
    fn count_tokens(&self, text: &str) -> usize;
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// Relevance of each passage to a query (higher is more relevant), as a
/// cross-encoder gives.
pub trait Reranker {
    fn rerank(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>>;
}

/// Embeddings from a hearth model through its engine.
pub struct ModelEmbedder {
    name: String,
    dim: usize,
    n_ctx: usize,
    tokenizer: Arc<Tokenizer>,
    engine: Engine,
    rt: tokio::runtime::Runtime,
}

/// Most context the embedding engine is given (an encoder's is its
/// trained length, 512 for MiniLM): longer inputs are refused.
const EMBED_CTX: usize = 2048;

impl ModelEmbedder {
    /// Loads the GGUF model at `path`, recorded as `name`, on `threads` threads.
    pub fn load(path: &Path, name: &str, threads: usize) -> Result<ModelEmbedder> {
        let model = Model::load(path)
            .map_err(|e| RagError::Embed(format!("loading {}: {e}", path.display())))?;
        let tokenizer = Tokenizer::from_gguf(model.file())
            .map_err(|e| RagError::Embed(format!("the tokenizer of {}: {e}", path.display())))?;
        let n_ctx = model.config.n_ctx_train.clamp(16, EMBED_CTX);
        let dim = model.config.n_embd;
        let tokenizer = Arc::new(tokenizer);
        let cfg = EngineConfig {
            n_parallel: 1,
            n_ctx,
            kv: KvType::F16,
            threads: threads.max(1),
            max_queue: 4,
            deterministic: false,
        };
        let engine = Engine::start(Arc::new(model), Arc::clone(&tokenizer), cfg)
            .map_err(|e| RagError::Embed(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| RagError::Embed(format!("starting a runtime: {e}")))?;
        Ok(ModelEmbedder {
            name: name.to_string(),
            dim,
            n_ctx,
            tokenizer,
            engine,
            rt,
        })
    }
}

impl Embedder for ModelEmbedder {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn max_tokens(&self) -> usize {
        self.n_ctx
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.encode(text, false, false).len()
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        engine_embed(&self.engine, &self.tokenizer, self.rt.handle(), texts)
    }
}

/// Tokens an input gets beyond its text's own (a BERT model's `[CLS]` and
/// `[SEP]`, a decoder's BOS): [`Embedder::count_tokens`] plus this must fit
/// [`Embedder::max_tokens`].
pub const SPECIAL_TOKENS: usize = 2;

/// Embeds `texts` with a model's engine from a thread outside the runtime
/// `rt` (each text tokenized with the model's special tokens). A text
/// longer than the engine's context is an error naming both sizes, never
/// cut short.
pub fn engine_embed(
    engine: &Engine,
    tokenizer: &Tokenizer,
    rt: &tokio::runtime::Handle,
    texts: &[String],
) -> Result<Vec<Vec<f32>>> {
    let n_ctx = engine.n_ctx();
    let inputs = texts
        .iter()
        .map(|t| {
            let mut ids = tokenizer.encode(t, true, false);
            if ids.is_empty() {
                ids = tokenizer.encode(" ", false, false);
            }
            if ids.len() > n_ctx {
                return Err(RagError::Embed(format!(
                    "a text of {} tokens is longer than the embedding model's context of {n_ctx} tokens",
                    ids.len()
                )));
            }
            Ok(ids)
        })
        .collect::<Result<Vec<Vec<u32>>>>()?;
    rt.block_on(engine.embed(inputs))
        .map_err(|e| RagError::Embed(e.to_string()))
}

impl Drop for ModelEmbedder {
    fn drop(&mut self) {
        self.engine.shutdown();
    }
}
