//! Human-readable sizes and the plan's table.

use std::fmt;

use crate::{DoesNotFit, Plan};

/// `1536` → `1.5 KiB`; powers of 1024, one decimal.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seqs = if self.parallel == 1 {
            "1 sequence".to_string()
        } else {
            format!("{} sequences", self.parallel)
        };
        writeln!(
            f,
            "{} ({}, trained context {} tokens)",
            self.model, self.arch, self.n_ctx_train
        )?;
        writeln!(
            f,
            "context {} tokens × {seqs}, KV cache {}, micro-batch {}",
            self.n_ctx, self.kv_type, self.n_ubatch
        )?;
        writeln!(f)?;
        let rows = [
            ("weights", self.weights),
            ("KV cache", self.kv_cache),
            ("recurrent state", self.recurrent_state),
            ("compute buffers", self.compute),
            ("fixed overhead", self.overhead),
        ];
        // A transformer has no recurrent state: no row for it.
        for (name, b) in rows
            .into_iter()
            .filter(|&(n, b)| b > 0 || n != "recurrent state")
        {
            writeln!(f, "  {name:<18}{:>12}", bytes(b))?;
            if let (Some(e), "weights") = (&self.experts, name) {
                writeln!(
                    f,
                    "    routed experts{:>12}  ({} of {} per token: {} read per token)",
                    bytes(e.expert_bytes),
                    e.used,
                    e.count,
                    bytes(e.active_bytes)
                )?;
            }
        }
        writeln!(f, "  {:<18}{:>12}", "total", bytes(self.total))?;
        writeln!(
            f,
            "  {:<18}{:>12}  ({})",
            "available",
            bytes(self.available.bytes),
            self.available.source
        )?;
        writeln!(f)?;
        if self.fits && self.n_ctx > self.n_ctx_train {
            return write!(
                f,
                "fits in memory, but beyond the trained {} tokens: the model may lose coherence past them",
                self.n_ctx_train
            );
        }
        let verdict = if self.fits { "fits" } else { "does NOT fit" };
        match self.max_ctx {
            Some(m) if m == self.n_ctx_train => write!(
                f,
                "{verdict}; the largest context that fits is the trained length, {m} tokens"
            ),
            Some(m) => write!(f, "{verdict}; the largest context that fits is {m} tokens"),
            None => write!(f, "{verdict}; no context fits"),
        }
    }
}

impl fmt::Display for DoesNotFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.plan;
        write!(
            f,
            "{} with a {}-token context{} needs {} (weights {}, KV cache {}, compute {}, \
             overhead {}) but {} is available ({}); ",
            p.model,
            p.n_ctx,
            if p.parallel > 1 {
                format!(" × {} sequences", p.parallel)
            } else {
                String::new()
            },
            bytes(p.total),
            bytes(p.weights),
            bytes(p.kv_cache),
            bytes(p.compute),
            bytes(p.overhead),
            bytes(p.available.bytes),
            p.available.source,
        )?;
        match p.max_ctx {
            Some(m) => write!(
                f,
                "the largest context that fits is {m} tokens: use --ctx {m} (or --ctx auto), \
                 or a smaller quantization"
            ),
            None => write!(
                f,
                "even the smallest context does not fit: use a smaller quantization or model, \
                 or free memory"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(98 << 20), "98.0 MiB");
        assert_eq!(bytes(24 << 30), "24.0 GiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
    }
}
