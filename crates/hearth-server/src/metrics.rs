//! Counters and histograms for `GET /metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram buckets in seconds.
const TTFT_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const TOKEN_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    n: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            n: 0,
        }
    }
    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.n += 1;
    }
    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.n);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.n);
    }
}

struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    prompt_tokens: u64,
    generated_tokens: u64,
    ttft: Histogram,
    per_token: Histogram,
}

/// The server's metrics.
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Mutex::new(Inner {
                requests: BTreeMap::new(),
                prompt_tokens: 0,
                generated_tokens: 0,
                ttft: Histogram::new(&TTFT_BUCKETS),
                per_token: Histogram::new(&TOKEN_BUCKETS),
            }),
        }
    }
}

/// Engine gauges at the time of a scrape.
#[derive(Default)]
pub struct Gauges {
    pub queued: usize,
    pub active: usize,
    pub loaded_models: usize,
}

impl Metrics {
    /// One finished request; `route` is the matched route pattern.
    pub fn request(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.inner.lock() {
            *m.requests.entry((route.to_string(), status)).or_default() += 1;
        }
    }
    pub fn tokens(&self, prompt: usize, generated: usize) {
        if let Ok(mut m) = self.inner.lock() {
            m.prompt_tokens += prompt as u64;
            m.generated_tokens += generated as u64;
        }
    }
    pub fn ttft(&self, d: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            m.ttft.observe(d.as_secs_f64());
        }
    }
    pub fn token_latency(&self, d: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            m.per_token.observe(d.as_secs_f64());
        }
    }

    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP hearth_requests_total HTTP requests by route and status.\n# TYPE hearth_requests_total counter\n");
        for ((route, status), n) in &m.requests {
            let route = route.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                out,
                "hearth_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP hearth_prompt_tokens_total Prompt tokens of finished generations.\n# TYPE hearth_prompt_tokens_total counter\nhearth_prompt_tokens_total {}", m.prompt_tokens);
        let _ = writeln!(out, "# HELP hearth_generated_tokens_total Generated tokens.\n# TYPE hearth_generated_tokens_total counter\nhearth_generated_tokens_total {}", m.generated_tokens);
        let _ = writeln!(out, "# HELP hearth_queue_depth Requests waiting for a sequence slot.\n# TYPE hearth_queue_depth gauge\nhearth_queue_depth {}", g.queued);
        let _ = writeln!(out, "# HELP hearth_active_sequences Sequences being generated.\n# TYPE hearth_active_sequences gauge\nhearth_active_sequences {}", g.active);
        let _ = writeln!(out, "# HELP hearth_loaded_models Models in memory.\n# TYPE hearth_loaded_models gauge\nhearth_loaded_models {}", g.loaded_models);
        m.ttft.write(
            &mut out,
            "hearth_time_to_first_token_seconds",
            "Time from submitting a generation to its first text.",
        );
        m.per_token.write(
            &mut out,
            "hearth_inter_token_latency_seconds",
            "Time between streamed pieces of text.",
        );
        out
    }
}
