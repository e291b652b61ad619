//! `hearth rag`: knowledge bases of your own documents — add files and
//! folders, query them, ask a model with numbered sources, list, remove,
//! and show statistics. Each knowledge base is one SQLite file in the
//! `rag` folder beside the model store (`~/.hearth/rag/KB.kb`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use hearth_rag::{ingest, search, Kb, Limits, ModelEmbedder, DEFAULT_EMBED_MODEL};

use crate::common;

#[derive(Args, Debug)]
pub struct RagArgs {
    #[command(subcommand)]
    pub cmd: RagCmd,
}

#[derive(Subcommand, Debug)]
pub enum RagCmd {
    /// Add files and folders (PDF, DOCX, HTML, Markdown, text, CSV) to a knowledge base.
    Add(AddArgs),
    /// Retrieve the passages that best match a question.
    Query(QueryArgs),
    /// Answer a question from a knowledge base, citing its sources.
    Ask(super::rag_ask::AskArgs),
    /// List the knowledge bases.
    Ls,
    /// Delete a knowledge base.
    Rm { kb: String },
    /// Show a knowledge base's files, chunks, model and index.
    Stats {
        kb: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The knowledge base (created on first use).
    pub kb: String,
    /// Files and folders to add; folders are read recursively.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The embedding model (a store name or a GGUF path) of a new knowledge
    /// base (default: the store's all-minilm); after that it must be the
    /// one the knowledge base was built with.
    #[arg(long)]
    pub embed_model: Option<String>,
    /// After adding, keep the knowledge base in sync with the paths
    /// (checked every 2 seconds) until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// Threads (default: the machine's cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    pub kb: String,
    pub question: String,
    /// How many passages.
    #[arg(short = 'k', default_value_t = 5)]
    pub k: usize,
    /// Print JSON: hits with source, page, span, heading, text, score.
    #[arg(long)]
    pub json: bool,
    /// Threads (default: the machine's cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
}

static CANCEL: AtomicBool = AtomicBool::new(false);

pub fn main(a: RagArgs) -> Result<()> {
    match a.cmd {
        RagCmd::Add(a) => add(a),
        RagCmd::Query(a) => query(a),
        RagCmd::Ask(a) => super::rag_ask::main(a),
        RagCmd::Ls => ls(),
        RagCmd::Rm { kb } => rm(&kb),
        RagCmd::Stats { kb, json } => stats(&kb, json),
    }
}

/// Where knowledge bases live: `rag/` beside the model store.
pub fn kb_dir() -> PathBuf {
    let store = hearth_store::default_root();
    store
        .parent()
        .map_or_else(|| PathBuf::from("rag"), |p| p.join("rag"))
}

/// The file of knowledge base `name`, after checking the name.
pub fn kb_path(name: &str) -> Result<PathBuf> {
    Ok(hearth_rag::kb_file(&kb_dir(), name)?)
}

/// Opens an existing knowledge base.
pub fn open(name: &str) -> Result<Kb> {
    let path = kb_path(name)?;
    if !path.is_file() {
        bail!("no knowledge base named {name:?} (`hearth rag ls` lists them; `hearth rag add {name} PATH` creates it)");
    }
    Ok(Kb::open(&path)?)
}

/// The embedding model a knowledge base records (or `requested`), loaded.
pub fn embedder(
    recorded: Option<&str>,
    requested: Option<&str>,
    threads: Option<usize>,
) -> Result<ModelEmbedder> {
    let name = match (recorded, requested) {
        (_, Some(r)) => r,
        (Some(r), None) => r,
        (None, None) => {
            if hearth_store::resolve_model(DEFAULT_EMBED_MODEL).is_err() {
                bail!("the default embedding model {DEFAULT_EMBED_MODEL} is not in the model store: run scripts/fetch-models.sh minilm to fetch it, or name another with --embed-model MODEL (a store name or a GGUF file)");
            }
            DEFAULT_EMBED_MODEL
        }
    };
    // A path is recorded as given (made absolute), so later commands find it.
    let recorded_name = if Path::new(name).exists() {
        std::fs::canonicalize(name)?.to_string_lossy().into_owned()
    } else {
        name.to_string()
    };
    let path = common::model_path(Path::new(&recorded_name))?;
    let threads = common::threads(threads)?;
    common::with_spinner(&format!("loading {name}"), || {
        ModelEmbedder::load(&path, &recorded_name, threads)
    })
    .with_context(|| format!("loading the embedding model {name}"))
}

fn add(a: AddArgs) -> Result<()> {
    let path = kb_path(&a.kb)?;
    std::fs::create_dir_all(kb_dir())
        .with_context(|| format!("creating {}", kb_dir().display()))?;
    let recorded = if path.is_file() {
        Some(Kb::open(&path)?.model().0.to_string())
    } else {
        None
    };
    let emb = embedder(recorded.as_deref(), a.embed_model.as_deref(), a.threads)?;
    let mut kb = Kb::create(&path, &emb)?;
    ctrlc::set_handler(|| {
        if CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping: what is done so far is kept (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;
    loop {
        let report = add_once(&mut kb, &emb, &a)?;
        if a.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            print_report(&report, a.watch);
        }
        if !a.watch || report.cancelled {
            return Ok(());
        }
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(100));
            if CANCEL.load(Ordering::SeqCst) {
                return Ok(());
            }
        }
    }
}

fn add_once(kb: &mut Kb, emb: &ModelEmbedder, a: &AddArgs) -> Result<ingest::Report> {
    let bar = indicatif::ProgressBar::new(0);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} files  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = ingest::add(kb, emb, &a.paths, &Limits::default(), &CANCEL, &mut |p| {
        bar.set_length(p.files_total as u64);
        bar.set_position(p.files_done as u64);
        bar.set_message(format!(
            "{} chunks  {:.1} chunks/s",
            p.chunks,
            p.chunks_per_second()
        ));
    })?;
    bar.finish_and_clear();
    Ok(report)
}

fn print_report(r: &ingest::Report, quiet_if_idle: bool) {
    let idle = r.indexed.is_empty() && r.removed.is_empty() && r.skipped.is_empty();
    if quiet_if_idle && idle && r.touched == 0 {
        return;
    }
    for (p, why) in &r.skipped {
        eprintln!("skipped {p}: {why}");
    }
    for p in &r.removed {
        eprintln!("removed {p}");
    }
    let rate = r.chunks as f64 / r.seconds.max(1e-9);
    println!(
        "{} files indexed ({} chunks, {rate:.1} chunks/s), {} unchanged, {} removed, {} skipped in {:.2} s{}",
        r.indexed.len(),
        r.chunks,
        r.unchanged + r.touched,
        r.removed.len(),
        r.skipped.len(),
        r.seconds,
        if r.cancelled { " (stopped early)" } else { "" }
    );
    if r.other_formats > 0 {
        println!("{} files of other formats passed over", r.other_formats);
    }
}

fn query(a: QueryArgs) -> Result<()> {
    if a.k == 0 {
        bail!("-k must be at least 1");
    }
    let kb = open(&a.kb)?;
    let emb = embedder(Some(kb.model().0), None, a.threads)?;
    let found = search::query(&kb, &emb, &a.question, a.k, None)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
        return Ok(());
    }
    if found.abstained {
        println!("(nothing in the documents looks relevant; the closest passages follow)");
    }
    for (i, h) in found.hits.iter().enumerate() {
        println!("[{}] {:.3}  {}", i + 1, h.score, locate(h));
        println!("    {}", h.text.replace('\n', "\n    "));
    }
    Ok(())
}

/// `file p.N chars S-E — heading`.
pub fn locate(h: &search::Hit) -> String {
    let mut s = h.source.clone();
    if let Some(p) = h.page {
        s.push_str(&format!(" p.{p}"));
    }
    s.push_str(&format!(" chars {}-{}", h.span.0, h.span.1));
    if !h.heading.is_empty() {
        s.push_str(&format!(" — {}", h.heading));
    }
    s
}

fn ls() -> Result<()> {
    let names = hearth_rag::kb_names(&kb_dir());
    println!("{:<24} {:>8} {:>8}  MODEL", "NAME", "FILES", "CHUNKS");
    for n in names {
        match open(&n).and_then(|kb| Ok(kb.stats()?)) {
            Ok(s) => println!("{n:<24} {:>8} {:>8}  {}", s.files, s.chunks, s.model),
            Err(e) => println!("{n:<24} (unreadable: {e:#})"),
        }
    }
    Ok(())
}

fn rm(name: &str) -> Result<()> {
    let path = kb_path(name)?;
    if !path.is_file() {
        bail!("no knowledge base named {name:?}");
    }
    hearth_rag::remove_kb(&path)?;
    println!("deleted {name}");
    Ok(())
}

fn stats(name: &str, json: bool) -> Result<()> {
    let s = open(name)?.stats()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("knowledge base  {name} ({})", s.path);
    println!("model           {} ({} dimensions)", s.model, s.dim);
    println!(
        "files           {} indexed, {} skipped",
        s.files, s.skipped_files
    );
    println!("chunks          {}", s.chunks);
    println!("size            {} bytes", s.db_bytes);
    println!("index           {}", s.dense_index);
    Ok(())
}
