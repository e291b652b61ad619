//! `hearth bench MODEL`: prompt and generation speed in llama-bench's shape.
//!
//! Tests follow llama.cpp's `tools/llama-bench`: `ppN` evaluates N random
//! tokens from an empty context in one forward pass; `tgN` decodes N tokens
//! one at a time from an almost empty context (a BOS token is evaluated
//! first and not timed). Every test runs once to warm up, then `-r` times
//! measured. `--json` writes llama-bench's JSON fields, so tools that read
//! llama-bench output read hearth's; hearth adds `load_time_ns`, `ttft_ns`,
//! `peak_rss_bytes` and, for `--sustained` runs, `sustained`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_model::{KvType, Logits, Model, State, UBATCH};
use serde::Serialize;

use crate::common;

/// The longest test hearth accepts, in tokens (as `--ctx`).
const MAX_LEN: usize = 1 << 20;
const MAX_THREADS: usize = 1024;
const MAX_REPS: usize = 100_000;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The model: a store name or a path to a GGUF file.
    pub model: PathBuf,
    /// Prompt lengths to test, comma-separated (0 skips prompt tests).
    #[arg(
        short = 'p',
        long = "n-prompt",
        value_delimiter = ',',
        default_value = "128,512"
    )]
    pub prompts: Vec<String>,
    /// Generation lengths to test, comma-separated (0 skips generation tests).
    #[arg(
        short = 'n',
        long = "n-gen",
        value_delimiter = ',',
        default_value = "128"
    )]
    pub gens: Vec<String>,
    /// Measured repetitions of each test (after one warm-up run).
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub reps: usize,
    /// Thread counts to test, comma-separated (default: the machine's cores).
    #[arg(short = 't', long, value_delimiter = ',')]
    pub threads: Vec<String>,
    /// Context size (default: just enough for the longest test).
    #[arg(long = "ctx", short = 'c')]
    pub ctx: Option<usize>,
    /// KV cache type: f16 or f32.
    #[arg(long, default_value = "f16")]
    pub kv_type: KvType,
    /// Print a JSON array with llama-bench's field names instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Output format, as llama-bench's `-o`: md (the table) or json.
    #[arg(short = 'o', long = "output", value_parser = ["md", "json"])]
    pub output: Option<String>,
    /// Also run K generation tests back to back (no warm-up) and compare the
    /// first run's speed with the last one's (throttling, cache effects).
    #[arg(long, value_name = "K")]
    pub sustained: Option<usize>,
    /// Seed for the random prompt tokens.
    #[arg(long, default_value_t = 1234)]
    pub seed: u64,
    /// Batch-invariant kernels, as `hearth serve --deterministic` (to
    /// measure what they cost).
    #[arg(long)]
    pub deterministic: bool,
}

/// Validated settings.
struct Config {
    model: PathBuf,
    prompts: Vec<usize>,
    gens: Vec<usize>,
    reps: usize,
    threads: Vec<usize>,
    ctx: Option<usize>,
    kv: KvType,
    json: bool,
    sustained: Option<usize>,
    seed: u64,
    deterministic: bool,
}

/// Parses a comma list given as `flag` (clap has split it already).
fn parse_list(flag: &str, items: &[String], min: usize, max: usize) -> Result<Vec<usize>> {
    if items.iter().all(|s| s.trim().is_empty()) {
        bail!("{flag} needs at least one value (a comma-separated list like 128,512)");
    }
    items
        .iter()
        .map(|s| {
            let s = s.trim();
            if s.is_empty() {
                bail!("{flag} has an empty item; expected a comma-separated list like 128,512");
            }
            let v: usize = s
                .parse()
                .with_context(|| format!("{flag}: '{s}' is not a non-negative integer"))?;
            if v < min || v > max {
                bail!("{flag}: {v} is out of range (expected {min}..={max})");
            }
            Ok(v)
        })
        .collect()
}

impl Config {
    fn from_args(a: BenchArgs) -> Result<Config> {
        let prompts = parse_list("-p/--n-prompt", &a.prompts, 0, MAX_LEN)?;
        // A generation test also holds its BOS token.
        let gens = parse_list("-n/--n-gen", &a.gens, 0, MAX_LEN - 1)?;
        let threads = if a.threads.is_empty() {
            vec![common::threads(None)?]
        } else {
            parse_list("-t/--threads", &a.threads, 1, MAX_THREADS)?
        };
        if a.reps == 0 || a.reps > MAX_REPS {
            bail!(
                "-r/--repetitions must be between 1 and {MAX_REPS}, got {}",
                a.reps
            );
        }
        let max_gen = gens.iter().copied().max().unwrap_or(0);
        match a.sustained {
            Some(k) if k < 2 => bail!("--sustained needs at least 2 runs to compare, got {k}"),
            Some(_) if max_gen == 0 => bail!("--sustained needs a generation length (-n) above 0"),
            _ => {}
        }
        if prompts.iter().all(|&p| p == 0) && max_gen == 0 {
            bail!("nothing to run: every -p and -n length is 0");
        }
        Ok(Config {
            model: a.model,
            prompts,
            gens,
            reps: a.reps,
            threads,
            ctx: a.ctx,
            kv: a.kv_type,
            json: a.json || a.output.as_deref() == Some("json"),
            sustained: a.sustained,
            seed: a.seed,
            deterministic: a.deterministic,
        })
    }

    /// Positions the longest test needs.
    fn needed_ctx(&self) -> usize {
        let p = self.prompts.iter().copied().max().unwrap_or(0);
        let g = self.gens.iter().copied().max().unwrap_or(0);
        p.max(g + 1).max(1)
    }

    fn n_ctx(&self, model: &Model) -> Result<usize> {
        let needed = self.needed_ctx();
        match self.ctx {
            Some(c) => {
                let c = common::context(model, Some(hearth_plan::Ctx::Tokens(c)), self.kv)?;
                if needed > c {
                    bail!("the longest test needs {needed} positions but --ctx is {c}");
                }
                Ok(c)
            }
            None => {
                let train = model.config.n_ctx_train;
                if needed > train {
                    bail!(
                        "the longest test needs {needed} positions, more than the {train} this model \
                         was trained for; pass --ctx {needed} to run it anyway"
                    );
                }
                Ok(needed)
            }
        }
    }
}

/// One test: `n_prompt` tokens in one pass, or `n_gen` single-token steps.
#[derive(Clone, Copy)]
struct Test {
    n_prompt: usize,
    n_gen: usize,
}

impl Test {
    fn name(self) -> String {
        if self.n_gen == 0 {
            format!("pp{}", self.n_prompt)
        } else {
            format!("tg{}", self.n_gen)
        }
    }
    fn tokens(self) -> usize {
        self.n_prompt + self.n_gen
    }
}

/// splitmix64: the random token ids (llama-bench uses `rand() % n_vocab`).
struct Rng(u64);

impl Rng {
    fn token(&mut self, n_vocab: usize) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % n_vocab as u64) as u32
    }
}

/// Runs tests on one model and state.
struct Runner<'a> {
    model: &'a Model,
    bos: u32,
    rng: Rng,
}

impl Runner<'_> {
    /// Time of one run of `t` from an empty context.
    fn run(&mut self, st: &mut State, t: Test) -> Result<Duration> {
        let n_vocab = self.model.config.n_vocab;
        st.clear();
        if t.n_gen == 0 {
            let mut tokens: Vec<u32> = (0..t.n_prompt).map(|_| self.rng.token(n_vocab)).collect();
            tokens[0] = self.bos;
            let t0 = Instant::now();
            self.model.forward(st, &tokens, Logits::Last)?;
            return Ok(t0.elapsed());
        }
        self.model.forward(st, &[self.bos], Logits::Last)?;
        let t0 = Instant::now();
        let mut token = self.rng.token(n_vocab);
        for _ in 0..t.n_gen {
            self.model.forward(st, &[token], Logits::Last)?;
            token = self.rng.token(n_vocab);
        }
        Ok(t0.elapsed())
    }
}

/// What llama-bench reports about the model.
struct ModelInfo {
    filename: String,
    model_type: String,
    size: u64,
    n_params: u64,
}

impl ModelInfo {
    fn of(model: &Model, path: &std::path::Path) -> ModelInfo {
        let f = model.file();
        let n_params: u64 = f.tensors().iter().map(|t| t.n_elements()).sum();
        let ftype = f
            .get_u64("general.file_type")
            .ok()
            .map_or("unknown", ftype_name);
        ModelInfo {
            filename: path.display().to_string(),
            model_type: format!(
                "{} {} {ftype}",
                model.config.arch.name(),
                size_label(n_params)
            ),
            size: model.weight_bytes(),
            n_params,
        }
    }
}

/// llama.cpp's `llama_model_ftype_name` for `general.file_type`.
fn ftype_name(ft: u64) -> &'static str {
    match ft {
        0 => "all F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K - Medium",
        11 => "Q3_K - Small",
        12 => "Q3_K - Medium",
        13 => "Q3_K - Large",
        14 => "Q4_K - Small",
        15 => "Q4_K - Medium",
        16 => "Q5_K - Small",
        17 => "Q5_K - Medium",
        18 => "Q6_K",
        19 => "IQ2_XXS - 2.0625 bpw",
        20 => "IQ2_XS - 2.3125 bpw",
        21 => "Q2_K - Small",
        22 => "IQ3_XS - 3.3 bpw",
        23 => "IQ3_XXS - 3.0625 bpw",
        24 => "IQ1_S - 1.5625 bpw",
        25 => "IQ4_NL - 4.5 bpw",
        26 => "IQ3_S - 3.4375 bpw",
        27 => "IQ3_S mix - 3.66 bpw",
        28 => "IQ2_S - 2.5 bpw",
        29 => "IQ2_M - 2.7 bpw",
        30 => "IQ4_XS - 4.25 bpw",
        31 => "IQ1_M - 1.75 bpw",
        32 => "BF16",
        36 => "TQ1_0 - 1.69 bpw ternary",
        37 => "TQ2_0 - 2.06 bpw ternary",
        38 => "MXFP4 MoE",
        _ => "unknown",
    }
}

/// "135M", "1.2B": the size class in a model description.
fn size_label(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.1}B", n as f64 / 1e9)
    } else {
        format!("{}M", (n as f64 / 1e6).round())
    }
}

/// Summary of `--sustained` runs.
#[derive(Serialize, Clone)]
struct Sustained {
    runs: usize,
    first_ts: f64,
    last_ts: f64,
    last_over_first: f64,
}

/// One result, with llama-bench's JSON field names and types, then hearth's.
#[derive(Serialize)]
struct Record {
    build_commit: String,
    build_number: u32,
    cpu_info: String,
    gpu_info: String,
    backends: String,
    model_filename: String,
    model_type: String,
    model_size: u64,
    model_n_params: u64,
    n_batch: usize,
    n_ubatch: usize,
    n_threads: usize,
    cpu_mask: String,
    cpu_strict: bool,
    poll: u32,
    type_k: String,
    type_v: String,
    n_gpu_layers: u32,
    n_cpu_moe: u32,
    split_mode: String,
    main_gpu: u32,
    no_kv_offload: bool,
    flash_attn: u32,
    devices: String,
    tensor_split: String,
    tensor_buft_overrides: String,
    load_mode: String,
    lazy_mode: String,
    embeddings: bool,
    no_op_offload: u32,
    no_host: bool,
    repack: bool,
    fit_target: u32,
    fit_min_ctx: u32,
    n_prompt: usize,
    n_gen: usize,
    n_depth: usize,
    test_time: String,
    avg_ns: u64,
    stddev_ns: u64,
    avg_ts: f64,
    stddev_ts: f64,
    samples_ns: Vec<u64>,
    samples_ts: Vec<f64>,
    // hearth's own fields
    load_time_ns: u64,
    ttft_ns: Option<u64>,
    peak_rss_bytes: Option<u64>,
    /// `--deterministic`: batch-invariant kernels.
    batch_invariant: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sustained: Option<Sustained>,
}

/// Mean and sample standard deviation (llama-bench's `avg` and `stdev`).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

struct Common<'a> {
    info: &'a ModelInfo,
    cpu: String,
    kv: &'static str,
    n_ctx: usize,
    load_time: Duration,
    ttft: Option<Duration>,
    batch_invariant: bool,
}

impl Common<'_> {
    fn record(&self, t: Test, threads: usize, samples: &[Duration]) -> Record {
        let samples_ns: Vec<u64> = samples.iter().map(|d| d.as_nanos().max(1) as u64).collect();
        let samples_ts: Vec<f64> = samples_ns
            .iter()
            .map(|&ns| 1e9 * t.tokens() as f64 / ns as f64)
            .collect();
        let ns: Vec<f64> = samples_ns.iter().map(|&x| x as f64).collect();
        let (avg_ns, sd_ns) = mean_sd(&ns);
        let (avg_ts, sd_ts) = mean_sd(&samples_ts);
        Record {
            build_commit: option_env!("HEARTH_BUILD_COMMIT")
                .unwrap_or(env!("CARGO_PKG_VERSION"))
                .into(),
            build_number: 0,
            cpu_info: self.cpu.clone(),
            gpu_info: String::new(),
            backends: "CPU".into(),
            model_filename: self.info.filename.clone(),
            model_type: self.info.model_type.clone(),
            model_size: self.info.size,
            model_n_params: self.info.n_params,
            // One forward call takes the whole prompt, in UBATCH-token micro-batches.
            n_batch: self.n_ctx,
            n_ubatch: UBATCH,
            n_threads: threads,
            cpu_mask: "0x0".into(),
            cpu_strict: false,
            poll: 0,
            type_k: self.kv.into(),
            type_v: self.kv.into(),
            n_gpu_layers: 0,
            n_cpu_moe: 0,
            split_mode: "none".into(),
            main_gpu: 0,
            no_kv_offload: false,
            flash_attn: 0,
            devices: "auto".into(),
            tensor_split: "0.00".into(),
            tensor_buft_overrides: "none".into(),
            load_mode: "mmap".into(),
            lazy_mode: "off".into(),
            embeddings: false,
            no_op_offload: 0,
            no_host: false,
            repack: false,
            fit_target: 0,
            fit_min_ctx: 0,
            n_prompt: t.n_prompt,
            n_gen: t.n_gen,
            n_depth: 0,
            test_time: utc_now(),
            avg_ns: avg_ns.round() as u64,
            stddev_ns: sd_ns.round() as u64,
            avg_ts,
            stddev_ts: sd_ts,
            samples_ns,
            samples_ts,
            load_time_ns: self.load_time.as_nanos() as u64,
            ttft_ns: self.ttft.map(|d| d.as_nanos() as u64),
            peak_rss_bytes: None,
            batch_invariant: self.batch_invariant,
            sustained: None,
        }
    }
}

pub fn main(a: BenchArgs) -> Result<()> {
    let cfg = Config::from_args(a)?;
    let path = crate::common::model_path(&cfg.model)?;
    let t0 = Instant::now();
    let model = Model::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let load_time = t0.elapsed();
    let n_ctx = cfg.n_ctx(&model)?;
    let info = ModelInfo::of(&model, &cfg.model);
    let n_vocab = model.config.n_vocab;
    let bos = model
        .file()
        .get_u64("tokenizer.ggml.bos_token_id")
        .ok()
        .filter(|&b| b < n_vocab as u64)
        .map_or(0, |b| b as u32);

    // Time to first token: process start to a 1-token forward pass done.
    let mut st = common::new_state(&model, n_ctx, cfg.kv, cfg.threads[0]);
    st.set_batch_invariant(cfg.deterministic);
    model
        .forward(&mut st, &[bos], Logits::Last)
        .context("first forward pass")?;
    let ttft = crate::PROCESS_START.get().map(|s| s.elapsed());

    let common = Common {
        info: &info,
        cpu: cpu_info(),
        kv: match cfg.kv {
            KvType::F16 => "f16",
            KvType::F32 => "f32",
        },
        n_ctx,
        load_time,
        ttft,
        batch_invariant: cfg.deterministic,
    };
    let tests: Vec<Test> = (cfg.prompts.iter().filter(|&&p| p > 0).map(|&p| Test {
        n_prompt: p,
        n_gen: 0,
    }))
    .chain(cfg.gens.iter().filter(|&&n| n > 0).map(|&n| Test {
        n_prompt: 0,
        n_gen: n,
    }))
    .collect();
    let mut runner = Runner {
        model: &model,
        bos,
        rng: Rng(cfg.seed),
    };
    let mut records = Vec::new();
    let mut sustained_lines = Vec::new();
    if !cfg.json {
        emit(&header())?;
    }
    for (i, &threads) in cfg.threads.iter().enumerate() {
        if i > 0 {
            st = common::new_state(&model, n_ctx, cfg.kv, threads);
            st.set_batch_invariant(cfg.deterministic);
        }
        for &t in &tests {
            runner
                .run(&mut st, t)
                .with_context(|| format!("{} warm-up", t.name()))?;
            let samples = (0..cfg.reps)
                .map(|_| runner.run(&mut st, t))
                .collect::<Result<Vec<_>>>()
                .with_context(|| t.name())?;
            let r = common.record(t, threads, &samples);
            if !cfg.json {
                emit(&row(&r))?;
            }
            records.push(r);
        }
        if let Some(k) = cfg.sustained {
            let t = Test {
                n_prompt: 0,
                n_gen: cfg.gens.iter().copied().max().unwrap_or(1),
            };
            let samples = (0..k)
                .map(|_| runner.run(&mut st, t))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("sustained {}", t.name()))?;
            let mut r = common.record(t, threads, &samples);
            let (first, last) = (r.samples_ts[0], r.samples_ts[k - 1]);
            let s = Sustained {
                runs: k,
                first_ts: first,
                last_ts: last,
                last_over_first: last / first,
            };
            sustained_lines.push(format!(
                "sustained {} ×{k}, {threads} thread(s): first {first:.2} t/s, last {last:.2} t/s, last/first {:.3}",
                t.name(),
                s.last_over_first
            ));
            r.sustained = Some(s);
            records.push(r);
        }
    }

    let rss = peak_rss_bytes();
    for r in &mut records {
        r.peak_rss_bytes = rss;
    }
    if cfg.json {
        return emit(&serde_json::to_string_pretty(&records)?);
    }
    let mut tail = String::from("\n");
    if cfg.deterministic {
        tail += "kernels:             batch-invariant (--deterministic)\n";
    }
    for l in &sustained_lines {
        tail += &format!("{l}\n");
    }
    tail += &format!("load time:           {:.2} ms\n", ms(load_time));
    tail += &match ttft {
        Some(d) => format!(
            "time to first token: {:.2} ms (process start to a 1-token forward pass)",
            ms(d)
        ),
        None => "time to first token: unavailable".into(),
    };
    tail += &match rss {
        Some(b) => format!(
            "\npeak RSS:            {:.1} MiB",
            b as f64 / (1024.0 * 1024.0)
        ),
        None => "\npeak RSS:            unavailable (no VmHWM in /proc/self/status)".into(),
    };
    emit(&tail)
}

/// Writes `text` and a newline to stdout now (rows appear as tests finish);
/// a closed stdout is an error, not a panic.
fn emit(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|_| out.flush())
        .context("writing the results to stdout")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn header() -> String {
    format!(
        "| {:<30} | {:>10} | {:>10} | {:<7} | {:>7} | {:>13} | {:>20} |\n| {} | {}: | {}: | {} | {}: | {}: | {}: |",
        "model",
        "size",
        "params",
        "backend",
        "threads",
        "test",
        "t/s",
        "-".repeat(30),
        "-".repeat(9),
        "-".repeat(9),
        "-".repeat(7),
        "-".repeat(6),
        "-".repeat(12),
        "-".repeat(19)
    )
}

/// A table row formatted as llama-bench's markdown printer does.
fn row(r: &Record) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let size = if r.model_size < 1 << 30 {
        format!("{:.2} MiB", r.model_size as f64 / MIB)
    } else {
        format!("{:.2} GiB", r.model_size as f64 / MIB / 1024.0)
    };
    let params = if r.model_n_params < 1_000_000_000 {
        format!("{:.2} M", r.model_n_params as f64 / 1e6)
    } else {
        format!("{:.2} B", r.model_n_params as f64 / 1e9)
    };
    let test = Test {
        n_prompt: r.n_prompt,
        n_gen: r.n_gen,
    }
    .name();
    let ts = format!("{:.2} ± {:.2}", r.avg_ts, r.stddev_ts);
    format!(
        "| {:<30} | {size:>10} | {params:>10} | {:<7} | {:>7} | {test:>13} | {ts:>20} |",
        r.model_type, r.backends, r.n_threads
    )
}

/// The CPU's model name, as `/proc/cpuinfo` gives it.
fn cpu_info() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// Peak resident set size (`VmHWM`), where the kernel reports it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Now as ISO 8601 UTC ("2024-05-01T12:34:56Z"), as llama-bench's `test_time`.
fn utc_now() -> String {
    hearth_time::iso8601_secs(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists_parse_and_reject_bad_items() {
        assert_eq!(
            parse_list("-p", &strs(&["128", " 512"]), 0, 10_000).ok(),
            Some(vec![128, 512])
        );
        assert!(parse_list("-p", &strs(&[""]), 0, 10).is_err());
        assert!(parse_list("-p", &strs(&["1", ""]), 0, 10).is_err());
        assert!(parse_list("-p", &strs(&["x"]), 0, 10).is_err());
        assert!(parse_list("-t", &strs(&["0"]), 1, 10).is_err());
        assert!(parse_list("-p", &strs(&["11"]), 0, 10).is_err());
    }

    #[test]
    fn mean_sd_matches_sample_formula() {
        let (m, s) = mean_sd(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        assert!((s - 1.290_994_448_735_805_6).abs() < 1e-12);
        assert_eq!(mean_sd(&[5.0]), (5.0, 0.0));
    }

    #[test]
    fn utc_now_is_iso8601() {
        let t = utc_now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn tokens_stay_in_vocabulary() {
        let mut r = Rng(7);
        assert!((0..1000).all(|_| r.token(13) < 13));
    }
}
