//! Transcribes audio files with `Whisper::transcribe` and prints the text
//! of each (one line per file, `--tsv` prefixes the file's stem and a tab),
//! with the time taken on stderr. The evaluation scripts
//! (scripts/compare-whisper.sh) run it when no `hearth transcribe` is built.
//!
//!     cargo run --release -p hearth-speech --example transcribe -- MODEL AUDIO... \
//!         [--beam N] [--threads N] [--language xx] [--translate] [--quantize q8_0|q5_0] [--segments] [--tsv]

use std::path::Path;
use std::time::Instant;

use hearth_speech::{Options, WeightType, Whisper};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut o = Options::default();
    let (mut files, mut model, mut quant) = (Vec::new(), None, None);
    let (mut segments, mut tsv) = (false, false);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--beam" => o.beam_size = value()?.parse()?,
            "--threads" => o.threads = value()?.parse()?,
            "--language" => o.language = Some(value()?),
            "--prompt" => o.initial_prompt = Some(value()?),
            "--translate" => o.translate = true,
            "--quantize" => quant = Some(value()?.parse::<WeightType>()?),
            "--segments" => segments = true,
            "--tsv" => tsv = true,
            f if f.starts_with("--") => return Err(format!("unknown flag {f}").into()),
            _ if model.is_none() => model = Some(a),
            _ => files.push(a),
        }
    }
    let Some(model) = model.filter(|_| !files.is_empty()) else {
        return Err("usage: transcribe MODEL AUDIO... [--beam N] [--threads N] [--language xx] [--translate] [--prompt TEXT] [--quantize q8_0|q5_0] [--segments] [--tsv]".into());
    };
    let t0 = Instant::now();
    let mut m = Whisper::load(Path::new(&model))?;
    if let Some(q) = quant {
        m.quantize(q)?;
    }
    eprintln!("load {:.2?}", t0.elapsed());
    for f in &files {
        let t = Instant::now();
        let samples = hearth_audio::load_16k(Path::new(f), &hearth_audio::Limits::default())?;
        let r = m.transcribe(&samples, &o, &mut |s| {
            if segments {
                eprintln!("[{:7.2} → {:7.2}] {}", s.start, s.end, s.text.trim());
            }
            true
        })?;
        let stem = Path::new(f)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if tsv {
            println!("{stem}\t{}", r.text().replace(['\t', '\n'], " "));
        } else {
            println!("{}", r.text());
        }
        eprintln!(
            "{stem}: {:.1} s of audio ({}) in {:.2?}",
            r.duration,
            r.language,
            t.elapsed()
        );
    }
    Ok(())
}
