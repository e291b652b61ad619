//! `hearth`: run language models on this machine.
//!
//! Parsing is done by clap into the raw argument structs of each
//! subcommand (`cmd/*.rs`); each subcommand validates them and does its job.

use std::sync::OnceLock;
use std::time::Instant;

use clap::{Parser, Subcommand};

mod cmd;
mod common;

/// When the process started (set first thing in `main`), for time to first token.
static PROCESS_START: OnceLock<Instant> = OnceLock::new();

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    long_version = long_version(),
    about = "Run language models locally, on your own hardware."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `hearth --version`: the version, then the kernel tier this process runs
/// (the best the CPU has, or the one `HEARTH_ISA` forces).
fn long_version() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{}\nkernels: {} (HEARTH_ISA=scalar|avx2|avx512 picks a tier)",
            env!("CARGO_PKG_VERSION"),
            hearth_quant::kernels().isa.name()
        )
    })
}

#[derive(Subcommand)]
enum Command {
    /// Generate from a prompt, or chat interactively.
    Run(cmd::run::RunArgs),
    /// Compute perplexity of a text file the way llama.cpp's perplexity tool does.
    Perplexity(cmd::perplexity::PerplexityArgs),
    /// Show how text is tokenized.
    Tokenize(cmd::tokenize::TokenizeArgs),
    /// Print the logits of every position of a list of token ids.
    Eval(cmd::eval::EvalArgs),
    /// Show a model's metadata and tensors.
    Show(cmd::show::ShowArgs),
    /// Measure prompt and generation speed (llama-bench's tests and output).
    Bench(cmd::bench::BenchArgs),
    /// Serve the Ollama and OpenAI HTTP APIs.
    Serve(cmd::serve::ServeArgs),
    /// Show the memory a model needs, what this machine has, and whether it fits.
    Plan(cmd::plan::PlanArgs),
    /// Download a model from Hugging Face (hf.co/OWNER/REPO[:QUANT]) or a URL.
    Pull(cmd::pull::PullArgs),
    /// Put a local GGUF file into the model store.
    Import(cmd::import::ImportArgs),
    /// List the models in the store.
    #[command(alias = "ls")]
    List(cmd::list::ListArgs),
    /// Remove models from the store.
    Rm(cmd::rm::RmArgs),
    /// Copy a model to another name.
    Cp(cmd::cp::CpArgs),
    /// Re-hash models and compare with what was installed.
    Verify(cmd::verify::VerifyArgs),
    /// List the models a running server has loaded.
    Ps(cmd::ps::PsArgs),
    /// Unload a model from the running server.
    Stop(cmd::stop::StopArgs),
    /// Make a store model from a Modelfile.
    Create(cmd::create::CreateArgs),
    /// Quantize a GGUF model to one of llama-quantize's types (Q4_K_M, Q8_0, …).
    Quantize(cmd::quantize::QuantizeArgs),
    /// Convert a sentence-transformers BERT folder (safetensors) to GGUF.
    Convert(cmd::convert::ConvertArgs),
    /// Knowledge bases of your own documents: add, query, ask, ls, rm, stats.
    Rag(cmd::rag::RagArgs),
    /// Check the egress audit log, or show what left the machine today.
    Audit(cmd::audit::AuditArgs),
    /// Explain where a prompt would be routed, without sending it.
    Route(cmd::route::RouteArgs),
    /// Speech to text with a Whisper model (text, json, srt, vtt, verbose_json).
    Transcribe(cmd::transcribe::TranscribeArgs),
}

/// Restores the default action for SIGPIPE, so that `hearth ... | head`
/// ends quietly when the reader goes away, as other command-line tools do,
/// instead of failing on every later write to stdout.
fn default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default is
    // async-signal-safe and done before any other thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    default_sigpipe();
    PROCESS_START.get_or_init(Instant::now);
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => cmd::run::main(a),
        Command::Perplexity(a) => cmd::perplexity::main(a),
        Command::Tokenize(a) => cmd::tokenize::main(a),
        Command::Eval(a) => cmd::eval::main(a),
        Command::Show(a) => cmd::show::main(a),
        Command::Bench(a) => cmd::bench::main(a),
        Command::Serve(a) => cmd::serve::main(a),
        Command::Plan(a) => cmd::plan::main(a),
        Command::Pull(a) => cmd::pull::main(a),
        Command::Import(a) => cmd::import::main(a),
        Command::List(a) => cmd::list::main(a),
        Command::Rm(a) => cmd::rm::main(a),
        Command::Cp(a) => cmd::cp::main(a),
        Command::Verify(a) => cmd::verify::main(a),
        Command::Ps(a) => cmd::ps::main(a),
        Command::Stop(a) => cmd::stop::main(a),
        Command::Create(a) => cmd::create::main(a),
        Command::Quantize(a) => cmd::quantize::main(a),
        Command::Convert(a) => cmd::convert::main(a),
        Command::Rag(a) => cmd::rag::main(a),
        Command::Audit(a) => cmd::audit::main(a),
        Command::Route(a) => cmd::route::main(a),
        Command::Transcribe(a) => cmd::transcribe::main(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
