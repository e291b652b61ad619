//! A reranker's scores through its engine: each (query, document) pair
//! laid out as llama-server lays it out, fitted to what one pass holds,
//! and evaluated like an embedding (queued, packed between decode steps).

use hearth_model::{Model, Pooling};
use hearth_tokenizer::Tokenizer;

use crate::batch::Engine;
use crate::EngineError;

/// Why pairs cannot be scored.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("the model pools with '{0}', and reranking needs 'rank' pooling (a classification head, such as bge-reranker's)")]
    NotReranker(&'static str),
    #[error("the query is {n} tokens with the pair's special tokens; the model holds {limit} tokens per pair")]
    QueryTooLong { n: usize, limit: usize },
    #[error(
        "document {index}: the pair is {n} tokens and the model holds {limit} tokens per pair"
    )]
    PairTooLong {
        index: usize,
        n: usize,
        limit: usize,
    },
}

/// A pooling type as llama.cpp names it.
pub fn pooling_name(p: Pooling) -> &'static str {
    match p {
        Pooling::Mean => "mean",
        Pooling::Cls => "cls",
        Pooling::Last => "last",
        Pooling::Rank { .. } => "rank",
    }
}

/// The most tokens one pair may have on `engine`: its context, and an
/// encoder's position table.
pub fn pair_limit(model: &Model, engine: &Engine) -> usize {
    engine.n_ctx().min(model.config.n_ctx_train)
}

/// The tokens of each (query, document) pair for `model`, a reranker
/// (with its `tokenizer.chat_template.rerank` when it has one). A pair
/// over `limit` tokens is an error, or with `truncate` loses the end of
/// its document (its closing token kept).
pub fn rerank_pairs(
    model: &Model,
    tok: &Tokenizer,
    query: &str,
    docs: &[&str],
    limit: usize,
    truncate: bool,
) -> Result<Vec<Vec<u32>>, PairError> {
    if !matches!(model.config.pooling, Pooling::Rank { .. }) {
        return Err(PairError::NotReranker(pooling_name(model.config.pooling)));
    }
    let template = model
        .file()
        .get("tokenizer.chat_template.rerank")
        .and_then(|v| v.as_str());
    let bare = tok.encode_rerank_pair(template, query, "");
    if bare.len() >= limit {
        return Err(PairError::QueryTooLong {
            n: bare.len(),
            limit,
        });
    }
    docs.iter()
        .enumerate()
        .map(|(index, d)| {
            let mut p = tok.encode_rerank_pair(template, query, d);
            if p.len() > limit {
                if !truncate {
                    return Err(PairError::PairTooLong {
                        index,
                        n: p.len(),
                        limit,
                    });
                }
                let closing = p.last().copied().filter(|_| tok.add_eos());
                p.truncate(limit - usize::from(closing.is_some()));
                p.extend(closing);
            }
            Ok(p)
        })
        .collect()
}

impl Engine {
    /// One relevance score per pair from [`rerank_pairs`] (the first
    /// output of the model's classification head), in the pairs' order.
    pub async fn rerank(&self, pairs: Vec<Vec<u32>>) -> Result<Vec<f32>, EngineError> {
        let outs = self.embed(pairs).await?;
        Ok(outs
            .into_iter()
            .map(|v| v.first().copied().unwrap_or(f32::NAN))
            .collect())
    }
}
