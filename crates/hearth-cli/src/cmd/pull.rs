//! `hearth pull SOURCE`: download a model into the store.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use hearth_store::{Progress, PullOptions, Store, StoreError};
use indicatif::{ProgressBar, ProgressStyle};

use super::store_fmt::human_size;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// hf.co/OWNER/REPO[:QUANT] (or huggingface.co/...), QUANT being a
    /// quantization such as Q4_K_M or a file name; or an https:// URL of a
    /// .gguf file.
    pub source: String,
    /// Install under this name (default: the repository and quantization,
    /// or the URL's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// The sha256 the file must have (a URL's file; for a repository it
    /// replaces the hub's hash).
    #[arg(long)]
    pub sha256: Option<String>,
}

static CANCEL: AtomicBool = AtomicBool::new(false);

/// Progress on stderr: a bar on a terminal, plain lines otherwise (at most
/// one per 2 s per file, and the last).
struct Reporter {
    bar: Option<ProgressBar>,
    tty: bool,
    current: String,
    last_line: Option<Instant>,
}

impl Reporter {
    /// Replaces a finished bar with one plain line (the bar leaves the
    /// cursor at the end of its own line).
    fn end_bar(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
            eprintln!("{}: {}", self.current, human_size(b.position()));
        }
    }

    fn on(&mut self, p: Progress) {
        match p {
            Progress::Status(s) => {
                self.end_bar();
                eprintln!("{s}");
            }
            Progress::Downloading {
                digest,
                file,
                total,
                completed,
            } => {
                let label = Progress::pulling(digest.as_deref(), &file);
                if self.current != label {
                    self.end_bar();
                    self.current = label.clone();
                    self.last_line = None;
                }
                if self.tty {
                    let bar = self.bar.get_or_insert_with(|| {
                        let b = ProgressBar::new(total.unwrap_or(0));
                        let style = ProgressStyle::with_template(
                            "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar());
                        b.set_style(style);
                        b.set_message(label.clone());
                        b
                    });
                    if let Some(t) = total {
                        bar.set_length(t);
                    }
                    bar.set_position(completed);
                } else {
                    let done = total == Some(completed);
                    let due = self
                        .last_line
                        .is_none_or(|t| t.elapsed() >= Duration::from_secs(2));
                    if due || done {
                        let of = total
                            .map(|t| format!(" / {}", human_size(t)))
                            .unwrap_or_default();
                        eprintln!("{label}: {}{of}", human_size(completed));
                        self.last_line = Some(Instant::now());
                    }
                }
            }
        }
    }
}

/// Whether hearth's model layer builds a configuration from a header
/// (architecture, hyper-parameters), checked before a pull downloads.
fn model_runs(h: &hearth_gguf::GgufFile) -> std::result::Result<(), String> {
    hearth_model::Config::from_gguf(h)
        .map(drop)
        .map_err(|e| e.to_string())
}

pub fn main(a: PullArgs) -> Result<()> {
    // A Whisper model already on this machine is imported as it is.
    let local = std::path::Path::new(&a.source);
    if local.exists() && hearth_speech::detect_whisper(local) {
        if a.sha256.is_some() {
            anyhow::bail!(
                "--sha256 checks a download; {} is a local folder or file",
                a.source
            );
        }
        return super::import::import_whisper(&super::import::ImportArgs {
            file: local.to_path_buf(),
            name: a.name,
        });
    }
    let store = Store::open_default();
    let mut opts = PullOptions::from_env();
    opts.accept = Some(model_runs);
    opts.name = a.name;
    opts.sha256 = a.sha256;
    ctrlc::set_handler(|| CANCEL.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let tty = std::io::stderr().is_terminal();
    let mut rep = Reporter {
        bar: None,
        tty,
        current: String::new(),
        last_line: None,
    };
    let r = hearth_store::pull(&store, &a.source, &opts, &mut |p| rep.on(p), &CANCEL);
    if let Some(b) = rep.bar.take() {
        b.abandon();
    }
    match r {
        Ok(m) => {
            println!(
                "pulled {} ({}, {}, {})",
                m.name,
                m.short_id(),
                human_size(m.size),
                m.file_type.as_deref().unwrap_or("?")
            );
            Ok(())
        }
        Err(StoreError::Cancelled) => {
            anyhow::bail!("cancelled; run the same pull again to resume")
        }
        Err(e) => Err(e.into()),
    }
}
