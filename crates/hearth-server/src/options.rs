//! The one option mapper: Ollama's `options` and OpenAI's request fields become
//! [`GenParams`] / [`SamplerConfig`] through [`Sampling`], and every field a request carries is
//! either one hearth acts on or one on an explicit list of fields that cannot change the result
//! ([`parse`]); anything else is a 400 that names it.

use hearth_engine::GenParams;
use hearth_sample::SamplerConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use axum::extract::{FromRequest, Request};

use crate::error::ApiError;
use crate::params::{JsonBody, OneOrMany};

/// Sampling fields both APIs spell the same way (OpenAI's own, plus the llama-server / Ollama
/// extensions hearth also accepts on `/v1`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Sampling {
    pub temperature: Option<f32>,
    pub top_k: Option<i64>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub typical_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub repeat_last_n: Option<i64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub mirostat: Option<i64>,
    pub mirostat_tau: Option<f32>,
    pub mirostat_eta: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Option<OneOrMany>,
}

/// The wire names of [`Sampling`].
pub const SAMPLING: &[&str] = &[
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "seed",
    "stop",
];

/// Sampling defaults of the server: Ollama's, with the repetition penalty
/// off (1.0) as in `hearth run`, so that both give the same text.
pub fn default_sampler() -> SamplerConfig {
    SamplerConfig {
        repeat_penalty: 1.0,
        ..SamplerConfig::default()
    }
}

fn bad(field: &str, v: impl std::fmt::Display, expected: &str) -> ApiError {
    ApiError::bad_request(format!("invalid {field} {v}: expected {expected}"))
}

impl Sampling {
    /// [`GenParams`] with these settings over [`default_sampler`]; the token limit and the
    /// API-specific fields are the caller's.
    pub fn to_params(&self) -> Result<GenParams, ApiError> {
        let mut s = default_sampler();
        let set = |dst: &mut f32, v: Option<f32>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut s.temperature, self.temperature);
        set(&mut s.top_p, self.top_p);
        set(&mut s.min_p, self.min_p);
        set(&mut s.typical_p, self.typical_p);
        set(&mut s.repeat_penalty, self.repeat_penalty);
        set(&mut s.presence_penalty, self.presence_penalty);
        set(&mut s.frequency_penalty, self.frequency_penalty);
        set(&mut s.mirostat_tau, self.mirostat_tau);
        set(&mut s.mirostat_eta, self.mirostat_eta);
        if let Some(v) = self.top_k {
            s.top_k = usize::try_from(v).map_err(|_| bad("top_k", v, "0 or more"))?;
        }
        if let Some(v) = self.repeat_last_n {
            s.repeat_last_n = i32::try_from(v)
                .ok()
                .filter(|&n| n >= -1)
                .ok_or_else(|| bad("repeat_last_n", v, "-1 (whole context), 0 (off) or more"))?;
        }
        if let Some(v) = self.mirostat {
            s.mirostat = u8::try_from(v)
                .ok()
                .filter(|&m| m <= 2)
                .ok_or_else(|| bad("mirostat", v, "0 (off), 1 or 2"))?;
        }
        // A negative seed (Ollama's -1) means random.
        s.seed = self.seed.and_then(|v| u64::try_from(v).ok());
        s.validate()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let stop = self
            .stop
            .clone()
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        check_stops(&stop)?;
        Ok(GenParams {
            sampler: s,
            stop,
            ..GenParams::default()
        })
    }
}

/// Checks a stop list: at most 16 strings, none empty.
pub fn check_stops(stops: &[String]) -> Result<(), ApiError> {
    if stops.len() > 16 {
        return Err(ApiError::bad_request(format!(
            "too many stop strings ({}): at most 16",
            stops.len()
        )));
    }
    if stops.iter().any(String::is_empty) {
        return Err(ApiError::bad_request("a stop string is empty"));
    }
    Ok(())
}

/// Which fields a request body may carry.
pub struct Fields {
    /// Where the fields live, for messages ("" for the body, "options." for Ollama's options).
    pub prefix: &'static str,
    /// Fields hearth acts on (each honoured, or refused with its own message when set to
    /// something hearth cannot do).
    pub known: &'static [&'static [&'static str]],
    /// Fields that cannot change the result, accepted and ignored.
    pub harmless: &'static [&'static str],
    /// An object field checked against its own list (Ollama's `options`).
    pub nested: Option<(&'static str, &'static Fields)>,
}

impl Fields {
    fn allows(&self, k: &str) -> bool {
        self.known.iter().any(|l| l.contains(&k)) || self.harmless.contains(&k)
    }

    /// A 400 naming the first field that is neither known nor harmless. A field set to `null`
    /// is the same as absent.
    pub fn check(&self, body: &Value) -> Result<(), ApiError> {
        let Some(obj) = body.as_object() else {
            return Ok(()); // the typed parse says what is wrong
        };
        for (k, v) in obj {
            if v.is_null() {
                continue;
            }
            if !self.allows(k) {
                return Err(ApiError::bad_request(format!(
                    "unknown field '{}{k}': hearth does not implement it and would otherwise \
                     ignore it, changing the result you asked for",
                    self.prefix
                )));
            }
            if let Some((name, inner)) = self.nested {
                if name == k {
                    inner.check(v)?;
                }
            }
        }
        Ok(())
    }
}

/// Checks `body`'s fields against `fields`, then reads it as `T`.
pub fn parse<T: DeserializeOwned>(body: Value, fields: &Fields) -> Result<T, ApiError> {
    fields.check(&body)?;
    serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))
}

/// A request type and the fields its body may carry.
pub trait RequestFields: DeserializeOwned {
    const FIELDS: &'static Fields;
}

/// A JSON body ([`JsonBody`]) whose fields were checked against
/// [`RequestFields::FIELDS`] before it was read as `T`.
pub struct Checked<T>(pub T);

impl<S: Send + Sync, T: RequestFields> FromRequest<S> for Checked<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBody(crate::strict::Strict(body)) = JsonBody::from_request(req, state).await?;
        parse(body, T::FIELDS).map(Checked)
    }
}

/// Ollama's runtime options that only change how the model runs, never what it generates.
const OLLAMA_HARMLESS: &[&str] = &[
    "numa",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mmap",
    "use_mlock",
    "embedding_only",
    "num_thread",
];

/// Ollama's `options`.
pub static OLLAMA_OPTIONS: Fields = Fields {
    prefix: "options.",
    known: &[
        SAMPLING,
        &[
            "num_predict",
            "num_ctx",
            "num_keep",
            "penalize_newline",
            "tfs_z",
        ],
    ],
    harmless: OLLAMA_HARMLESS,
    nested: None,
};

/// Ollama's `options` object.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Options {
    #[serde(flatten)]
    pub sampling: Sampling,
    pub num_predict: Option<i64>,
    pub num_ctx: Option<i64>,
    pub num_keep: Option<i64>,
    pub penalize_newline: Option<bool>,
    pub tfs_z: Option<f32>,
}

impl Options {
    /// Generation parameters; `max_tokens` from `num_predict` (-1 or -2: no limit).
    ///
    /// `num_keep` turns on context shift (as in Ollama and llama.cpp): when the context fills,
    /// the first `num_keep` tokens stay, half of the rest is dropped and generation goes on.
    /// `penalize_newline: false` keeps the repetition penalties off the newline token.
    /// `tfs_z` (tail-free sampling, which llama.cpp removed) is accepted only as 1 (off).
    pub fn to_params(&self) -> Result<GenParams, ApiError> {
        let mut p = self.sampling.to_params()?;
        p.max_tokens = match self.num_predict {
            None | Some(-1) | Some(-2) => None,
            Some(n) => Some(
                usize::try_from(n)
                    .map_err(|_| bad("num_predict", n, "-1 (no limit) or 0 or more"))?,
            ),
        };
        if let Some(n) = self.num_keep {
            p.n_keep = usize::try_from(n).map_err(|_| bad("num_keep", n, "0 or more"))?;
            p.context_shift = true;
        }
        p.exempt_newline = self.penalize_newline == Some(false);
        if let Some(z) = self.tfs_z.filter(|&z| z != 1.0) {
            return Err(ApiError::bad_request(format!(
                "options.tfs_z {z} is not supported: tail-free sampling is not implemented \
                 (llama.cpp removed it); use 1 (off), typical_p or min_p"
            )));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Result<GenParams, ApiError> {
        let o: Options = parse(v, &OLLAMA_OPTIONS)?;
        o.to_params()
    }

    #[test]
    fn options_map_and_validate() {
        let p = opts(
            json!({"temperature": 0, "num_predict": 5, "stop": "x", "seed": 3,
                            "mirostat": 0, "num_thread": 8}),
        )
        .expect("params");
        assert!(p.sampler.is_greedy());
        assert_eq!(p.max_tokens, Some(5));
        assert_eq!(p.stop, vec!["x".to_string()]);
        assert_eq!(p.sampler.seed, Some(3));
        assert!(!p.context_shift && !p.exempt_newline);
        for bad in [
            json!({"top_p": 2.0}),
            json!({"top_k": -3}),
            json!({"num_predict": -7}),
            json!({"mirostat": 3}),
            json!({"mirostat_tau": 0}),
            json!({"typical_p": 0}),
            json!({"num_keep": -1}),
            json!({"repeat_last_n": -2}),
            json!({"tfs_z": 0.9}),
        ] {
            assert!(opts(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn ollama_only_options() {
        let p = opts(
            json!({"mirostat": 2, "mirostat_tau": 3.5, "mirostat_eta": 0.2,
                            "typical_p": 0.7, "num_keep": 5, "penalize_newline": false,
                            "tfs_z": 1.0}),
        )
        .expect("params");
        assert_eq!(p.sampler.mirostat, 2);
        assert_eq!(p.sampler.mirostat_tau, 3.5);
        assert_eq!(p.sampler.mirostat_eta, 0.2);
        assert_eq!(p.sampler.typical_p, 0.7);
        assert_eq!((p.n_keep, p.context_shift), (5, true));
        assert!(p.exempt_newline);
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = opts(json!({"temperature": 1, "xtc_probability": 0.5})).expect_err("unknown");
        assert!(
            e.message.contains("'options.xtc_probability'"),
            "{}",
            e.message
        );
        // null is absent; harmless runtime options pass.
        assert!(opts(json!({"xtc_probability": null, "use_mmap": true})).is_ok());
    }
}
