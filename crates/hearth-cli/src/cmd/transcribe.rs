//! `hearth transcribe MODEL AUDIO…`: speech to text with a Whisper model.
//!
//! The line formats (text, srt, vtt) are printed segment by segment as
//! they are decoded; the JSON formats when a file is done. For audio longer
//! than one 30 s window a progress line (percent of the audio) goes to
//! stderr. With `-o FILE` the output is written to a temporary file next
//! to FILE and renamed over it when every audio file is done, so a failure
//! never leaves half a transcript behind.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_speech::format::{self, Format, Granularity, Writer};
use hearth_speech::{Options, WeightType, Whisper};

use crate::common;

#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// A Whisper model: a store name (`whisper:tiny.en`), a CTranslate2
    /// folder or a whisper.cpp ggml `.bin`.
    pub model: PathBuf,
    /// Audio files (WAV, FLAC, MP3, OGG/Vorbis), transcribed in order.
    #[arg(required = true)]
    pub audio: Vec<PathBuf>,
    /// The spoken language as a code (`en`, `de`, …); `auto` or left out:
    /// detect it (multilingual models).
    #[arg(long, short = 'l')]
    pub language: Option<String>,
    /// Translate the speech to English.
    #[arg(long)]
    pub translate: bool,
    /// text, json, srt, vtt or verbose_json.
    #[arg(long, short = 'f', default_value = "text")]
    pub format: String,
    /// Time every word (listed in verbose_json).
    #[arg(long)]
    pub word_timestamps: bool,
    /// Beams of the beam search; 1 decodes greedily.
    #[arg(long, default_value_t = 5)]
    pub beam: usize,
    /// The first sampling temperature; a window that fails the
    /// compression-ratio or log-probability check is decoded again 0.2
    /// hotter, up to 1.0.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Text that comes before the audio (names, spelling, style).
    #[arg(long)]
    pub prompt: Option<String>,
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Re-encode the large matrices after loading: q8_0 or q5_0 (smaller
    /// and faster, slightly less exact), or f16.
    #[arg(long, value_name = "TYPE")]
    pub quantize: Option<String>,
    /// Write the output to this file instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

fn options(a: &TranscribeArgs) -> Result<Options> {
    if a.beam == 0 {
        bail!("--beam must be at least 1");
    }
    let language = match a.language.as_deref() {
        None | Some("auto") => None,
        Some(code) => {
            if !hearth_speech::tokenizer::LANGUAGES.contains(&code) {
                bail!("unknown language {code:?}; give a code such as en, de, fr, or auto");
            }
            Some(code.to_string())
        }
    };
    Ok(Options {
        language,
        translate: a.translate,
        beam_size: a.beam,
        temperatures: format::temperature_schedule(a.temperature)
            .map_err(|e| anyhow::anyhow!("--{e}"))?,
        initial_prompt: a.prompt.clone(),
        word_timestamps: a.word_timestamps,
        threads: common::threads(a.threads)?,
        ..Options::default()
    })
}

/// Where the output goes: stdout as it comes, or a file at the end.
enum Sink {
    Stdout(std::io::Stdout),
    File { buf: Vec<u8> },
}

impl Sink {
    fn write(&mut self, s: &str) -> Result<()> {
        match self {
            Sink::Stdout(o) => {
                let mut o = o.lock();
                o.write_all(s.as_bytes())?;
                o.flush()?;
            }
            Sink::File { buf } => buf.extend_from_slice(s.as_bytes()),
        }
        Ok(())
    }
}

/// Shows how far a long file is, on one line of stderr.
struct Progress<'a> {
    name: &'a str,
    duration: f64,
    terminal: bool,
    shown: bool,
}

impl Progress<'_> {
    fn update(&mut self, at: f64) {
        // One window or less is done in one step: no progress to show.
        if self.duration <= 30.0 {
            return;
        }
        let pct = (at / self.duration * 100.0).clamp(0.0, 100.0);
        let line = format!(
            "{}: {pct:3.0}% ({at:.1} s of {:.1} s)",
            self.name, self.duration
        );
        let mut e = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(e, "\r\x1b[K{line}")
        } else {
            writeln!(e, "{line}")
        };
        self.shown = true;
    }

    /// The file is done: 100% (when progress was shown at all).
    fn done(&mut self) {
        if self.shown {
            self.update(self.duration);
            if self.terminal {
                eprintln!();
            }
        }
    }
}

pub fn main(a: TranscribeArgs) -> Result<()> {
    let fmt: Format = a.format.parse().map_err(anyhow::Error::msg)?;
    let opts = options(&a)?;
    let task = if a.translate {
        "translate"
    } else {
        "transcribe"
    };
    let granularity = Granularity {
        segments: true,
        words: a.word_timestamps,
    };
    let quantize = a
        .quantize
        .as_deref()
        .map(str::parse::<WeightType>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--quantize: {e}"))?;
    let path = common::model_path(&a.model)?;
    let mut model = common::with_spinner(&format!("loading {}", a.model.display()), || {
        Whisper::load(&path)
    })
    .with_context(|| {
        format!(
            "{} is not a Whisper model hearth can load",
            a.model.display()
        )
    })?;
    if let Some(kind) = quantize {
        model
            .quantize(kind)
            .with_context(|| format!("quantizing {} to {kind:?}", a.model.display()))?;
    }
    if opts.translate && !model.is_multilingual() {
        bail!(
            "{} is an English-only model; --translate needs a multilingual one",
            a.model.display()
        );
    }
    let mut sink = match &a.output {
        Some(_) => Sink::File { buf: Vec::new() },
        None => Sink::Stdout(std::io::stdout()),
    };
    for file in &a.audio {
        transcribe_one(&model, file, &opts, fmt, task, granularity, &mut sink)?;
    }
    if let (Some(out), Sink::File { buf }) = (&a.output, &sink) {
        write_whole(out, buf)?;
    }
    Ok(())
}

fn transcribe_one(
    model: &Whisper,
    file: &Path,
    opts: &Options,
    fmt: Format,
    task: &str,
    g: Granularity,
    sink: &mut Sink,
) -> Result<()> {
    let samples = hearth_audio::load_16k(file, &hearth_audio::Limits::default())
        .with_context(|| format!("reading {}", file.display()))?;
    let name = file.display().to_string();
    let mut progress = Progress {
        name: &name,
        duration: samples.len() as f64 / f64::from(hearth_audio::mel::SAMPLE_RATE),
        terminal: std::io::stderr().is_terminal(),
        shown: false,
    };
    let mut writer = Writer::new(fmt);
    sink.write(writer.header())?;
    let mut failed: Option<anyhow::Error> = None;
    let t = model.transcribe(&samples, opts, &mut |seg| {
        progress.update(seg.end);
        match sink.write(&writer.segment(seg)) {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    });
    progress.done();
    if let Some(e) = failed {
        return Err(e);
    }
    let t = t.with_context(|| format!("transcribing {}", file.display()))?;
    if !fmt.is_streamed() {
        sink.write(&format::render(&t, fmt, task, g))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let r = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.with_context(|| format!("writing {}", path.display()))
}
