//! `hearth`: run language models on this machine.
//!
//! Parsing is done by clap into the raw argument structs of each
//! subcommand (`cmd/*.rs`); each subcommand validates them and does its job.

use clap::{Parser, Subcommand};

mod cmd;
mod common;

#[derive(Parser)]
#[command(
    name = "hearth",
    version,
    about = "Run language models locally, on your own hardware."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate from a prompt, or chat interactively.
    Run(cmd::run::RunArgs),
    /// Compute perplexity of a text file the way llama.cpp's perplexity tool does.
    Perplexity(cmd::perplexity::PerplexityArgs),
    /// Show how text is tokenized.
    Tokenize(cmd::tokenize::TokenizeArgs),
    /// Show a model's metadata and tensors.
    Show(cmd::show::ShowArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => cmd::run::main(a),
        Command::Perplexity(a) => cmd::perplexity::main(a),
        Command::Tokenize(a) => cmd::tokenize::main(a),
        Command::Show(a) => cmd::show::main(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
