//! Sampling settings, their defaults and their validation.

use crate::SampleError;

/// Sampling settings for one sequence.
///
/// Defaults follow Ollama (`temperature 0.8, top_k 40, top_p 0.9, min_p 0.0,
/// repeat_penalty 1.1, repeat_last_n 64`, presence and frequency 0, random seed).
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; `<= 0` means greedy (argmax). Must not be negative or NaN.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 = off.
    pub top_k: usize,
    /// Nucleus sampling: keep the smallest set with probability mass >= `top_p`; in `(0, 1]`,
    /// 1 = off.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; in `[0, 1]`, 0 = off.
    pub min_p: f32,
    /// Repetition penalty for tokens in the window: positive logits are divided by it,
    /// non-positive ones multiplied; 1 = off. Must be > 0.
    pub repeat_penalty: f32,
    /// Penalty window: the last `repeat_last_n` tokens; 0 = off, -1 = the whole context.
    pub repeat_last_n: i32,
    /// Subtracted once from the logit of every token present in the window (OpenAI style).
    pub presence_penalty: f32,
    /// Subtracted per occurrence in the window (OpenAI style).
    pub frequency_penalty: f32,
    /// RNG seed; `None` draws a random one. Same seed, same settings, same logits ⇒ same tokens.
    pub seed: Option<u64>,
    /// Locally typical sampling: keep typical probability mass `typical_p`; in `(0, 1]`, 1 = off.
    pub typical_p: f32,
    /// 0 = off, 1 = Mirostat, 2 = Mirostat 2.0 (replacing top-k, typical, top-p and min-p).
    pub mirostat: u8,
    /// Mirostat's target surprise in bits (> 0).
    pub mirostat_tau: f32,
    /// Mirostat's learning rate (>= 0).
    pub mirostat_eta: f32,
    /// `(token id, bias)` added to the logits before anything else; `-inf` bans the token.
    pub logit_bias: Vec<(u32, f32)>,
    /// Tokens the repetition penalties leave alone (Ollama's `penalize_newline: false` exempts
    /// the newline token).
    pub penalty_exempt: Vec<u32>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
            min_p: 0.0,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
            typical_p: 1.0,
            mirostat: 0,
            mirostat_tau: 5.0,
            mirostat_eta: 0.1,
            logit_bias: Vec::new(),
            penalty_exempt: Vec::new(),
        }
    }
}

impl SamplerConfig {
    /// Pure argmax of the raw logits: temperature 0 and every filter and penalty off (the
    /// settings of the llama.cpp golden greedy runs).
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 1,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            ..Self::default()
        }
    }

    /// True when sampling reduces to an argmax (`temperature <= 0`).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// Checks every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), SampleError> {
        let bad = |field: &'static str, value: f32, expected: &'static str| {
            Err(SampleError::InvalidParameter {
                field,
                value: value.to_string(),
                expected,
            })
        };
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad("temperature", self.temperature, "a finite number >= 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", self.top_p, "a number in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p", self.min_p, "a number in [0, 1]");
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            return bad("repeat_penalty", self.repeat_penalty, "a finite number > 0");
        }
        if self.repeat_last_n < -1 {
            return Err(SampleError::InvalidParameter {
                field: "repeat_last_n",
                value: self.repeat_last_n.to_string(),
                expected: "-1 (whole context), 0 (off) or a positive window",
            });
        }
        if !self.presence_penalty.is_finite() {
            return bad("presence_penalty", self.presence_penalty, "a finite number");
        }
        if !self.frequency_penalty.is_finite() {
            return bad(
                "frequency_penalty",
                self.frequency_penalty,
                "a finite number",
            );
        }
        if !(self.typical_p > 0.0 && self.typical_p <= 1.0) {
            return bad("typical_p", self.typical_p, "a number in (0, 1]");
        }
        if self.mirostat > 2 {
            return Err(SampleError::InvalidParameter {
                field: "mirostat",
                value: self.mirostat.to_string(),
                expected: "0 (off), 1 or 2",
            });
        }
        if !(self.mirostat_tau > 0.0 && self.mirostat_tau.is_finite()) {
            return bad("mirostat_tau", self.mirostat_tau, "a finite number > 0");
        }
        if !(self.mirostat_eta >= 0.0 && self.mirostat_eta.is_finite()) {
            return bad("mirostat_eta", self.mirostat_eta, "a finite number >= 0");
        }
        if let Some(&(_, b)) = self
            .logit_bias
            .iter()
            .find(|(_, b)| b.is_nan() || *b == f32::INFINITY)
        {
            return bad("logit_bias", b, "a finite number or -inf (ban)");
        }
        Ok(())
    }

    /// The penalty window in tokens for a context of `n_ctx`: 0 = off, -1 ⇒ `n_ctx`.
    pub fn penalty_window(&self, n_ctx: usize) -> usize {
        match self.repeat_last_n {
            -1 => n_ctx,
            n => usize::try_from(n).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalty_window() {
        let mut c = SamplerConfig::default();
        assert_eq!(c.penalty_window(2048), 64);
        c.repeat_last_n = -1;
        assert_eq!(c.penalty_window(2048), 2048);
        c.repeat_last_n = 0;
        assert_eq!(c.penalty_window(2048), 0);
        c.repeat_last_n = -7;
        assert_eq!(c.penalty_window(2048), 0);
    }
}
