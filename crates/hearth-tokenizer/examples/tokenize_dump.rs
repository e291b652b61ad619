//! Dumps tokenizations in the format of `tools/compare/harness.cpp`, so the
//! two can be compared byte for byte (see `tools/compare/run.sh`).
//!
//! ```text
//! tokenize_dump tok MODEL.gguf INPUTS.bin OUT.txt ADD_SPECIAL(0|1) PARSE_SPECIAL(0|1)
//! tokenize_dump repre MODEL.gguf OUT.gguf PRE      # metadata only, tokenizer.ggml.pre = PRE
//! tokenize_dump pre-names                          # the known tokenizer.ggml.pre values
//! ```
//!
//! INPUTS.bin holds records `[u32 little-endian length][UTF-8 bytes]`. For
//! each record OUT.txt gets three lines: the ids, then the hex of
//! `decode(ids, true)`, then the hex of `decode(ids, false)`.

use std::io::Write;

use hearth_gguf::{GgufFile, GgufWriter, Value};
use hearth_tokenizer::Tokenizer;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn read_inputs(path: &str) -> Res<Vec<String>> {
    let bytes = std::fs::read(path)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= bytes.len() {
        let n = u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]) as usize;
        i += 4;
        let rec = bytes.get(i..i + n).ok_or("truncated record")?;
        out.push(String::from_utf8(rec.to_vec())?);
        i += n;
    }
    Ok(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .ok_or("missing argument (see the file header)")
    };
    match arg(1)? {
        "tok" => {
            let tok = Tokenizer::from_gguf(&GgufFile::open(arg(2)?)?)?;
            let (add, parse) = (arg(5)? == "1", arg(6)? == "1");
            let mut out = std::io::BufWriter::new(std::fs::File::create(arg(4)?)?);
            for text in read_inputs(arg(3)?)? {
                let ids = tok.encode(&text, add, parse);
                let list: Vec<String> = ids.iter().map(u32::to_string).collect();
                writeln!(out, "{}", list.join(" "))?;
                writeln!(out, "{}", hex(tok.decode(&ids, true).as_bytes()))?;
                writeln!(out, "{}", hex(tok.decode(&ids, false).as_bytes()))?;
            }
        }
        "repre" => {
            let file = GgufFile::open(arg(2)?)?;
            let mut w = GgufWriter::new();
            for (k, v) in file.metadata() {
                w.set(k, v.clone());
            }
            w.set("tokenizer.ggml.pre", Value::from(arg(4)?));
            w.write_file(arg(3)?)?;
        }
        "pre-names" => println!("{}", hearth_tokenizer::known_pre_tokenizers().join("\n")),
        other => return Err(format!("unknown command {other}").into()),
    }
    Ok(())
}
