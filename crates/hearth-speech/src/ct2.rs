//! The CTranslate2 `model.bin` container: a versioned list of named,
//! shaped, typed arrays, followed by aliases (one array under two names).
//!
//! Layout (little-endian): `u32` binary version; from version 2 a spec name
//! and a `u32` spec revision; `u32` variable count; per variable a name,
//! `u8` rank, `rank × u32` dims, `u8` dtype, `u32` byte count and the bytes;
//! a `u32` alias count and (alias, target) name pairs.
//! Strings are a `u16` length followed by that many bytes, NUL-terminated.
//! Every length is checked against what is left of the file.

use std::collections::HashMap;

use crate::reader::Reader;
use crate::SpeechError;

/// Most dims a variable may have.
const MAX_RANK: usize = 8;

/// The array types of the container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ct2Type {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl Ct2Type {
    fn from_id(id: u8) -> Option<Ct2Type> {
        Some(match id {
            0 => Ct2Type::F32,
            1 => Ct2Type::I8,
            2 => Ct2Type::I16,
            3 => Ct2Type::I32,
            4 => Ct2Type::F16,
            5 => Ct2Type::BF16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Ct2Type::I8 => 1,
            Ct2Type::I16 | Ct2Type::F16 | Ct2Type::BF16 => 2,
            Ct2Type::F32 | Ct2Type::I32 => 4,
        }
    }
}

/// One array of the container, borrowed from the file's bytes.
#[derive(Clone, Debug)]
pub struct Variable<'a> {
    pub dims: Vec<usize>,
    pub ty: Ct2Type,
    pub data: &'a [u8],
}

impl Variable<'_> {
    /// The value of a scalar integer variable (such as `encoder/num_heads`).
    pub fn scalar_int(&self) -> Option<i64> {
        if self.dims.iter().product::<usize>() != 1 {
            return None;
        }
        Some(match self.ty {
            Ct2Type::I8 => i64::from(self.data[0] as i8),
            Ct2Type::I16 => i64::from(i16::from_le_bytes([self.data[0], self.data[1]])),
            Ct2Type::I32 => i64::from(i32::from_le_bytes(self.data[..4].try_into().ok()?)),
            _ => return None,
        })
    }
}

/// A parsed container.
#[derive(Debug)]
pub struct Ct2File<'a> {
    pub version: u32,
    pub spec: String,
    pub revision: u32,
    pub vars: HashMap<String, Variable<'a>>,
}

impl Reader<'_> {
    fn string(&mut self, what: &str) -> Result<String, SpeechError> {
        let n = self.u16(what)? as usize;
        let s = self.take(n, what)?;
        let s = s.strip_suffix(&[0]).unwrap_or(s);
        String::from_utf8(s.to_vec())
            .map_err(|_| SpeechError::Format(format!("model.bin: {what} is not UTF-8")))
    }
}

/// Parses a `model.bin` held in memory.
pub fn parse(bytes: &[u8]) -> Result<Ct2File<'_>, SpeechError> {
    let mut r = Reader::new(bytes, "model.bin");
    let version = r.u32("the binary version")?;
    if !(4..=6).contains(&version) {
        return Err(SpeechError::Format(format!(
            "model.bin has binary version {version}; versions 4 to 6 are supported"
        )));
    }
    let spec = r.string("the spec name")?;
    let revision = r.u32("the spec revision")?;
    let count = r.u32("the variable count")? as usize;
    // A variable takes at least 2 (name) + 1 (rank) + 1 (dtype) + 4 (size) bytes.
    if count > (bytes.len() - r.pos) / 8 {
        return Err(SpeechError::Format(format!(
            "model.bin claims {count} variables, more than its {} bytes can hold",
            bytes.len()
        )));
    }
    let mut vars = HashMap::with_capacity(count);
    for _ in 0..count {
        let name = r.string("a variable name")?;
        let rank = r.u8("a rank")? as usize;
        if rank > MAX_RANK {
            return Err(SpeechError::Format(format!(
                "model.bin variable {name} has rank {rank}; at most {MAX_RANK}"
            )));
        }
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            dims.push(r.u32("a dimension")? as usize);
        }
        let id = r.u8("a dtype")?;
        let ty = Ct2Type::from_id(id).ok_or_else(|| {
            SpeechError::Format(format!("model.bin variable {name} has unknown dtype {id}"))
        })?;
        let n_bytes = r.u32("a byte count")? as usize;
        let expect = dims
            .iter()
            .try_fold(ty.size(), |a, &d| a.checked_mul(d))
            .ok_or_else(|| {
                SpeechError::Format(format!("model.bin variable {name}: shape overflows"))
            })?;
        if expect != n_bytes {
            return Err(SpeechError::Format(format!(
                "model.bin variable {name}: shape {dims:?} of {ty:?} is {expect} bytes, the file says {n_bytes}"
            )));
        }
        let data = r.take(n_bytes, &format!("variable {name}"))?;
        vars.insert(name, Variable { dims, ty, data });
    }
    {
        let n = r.u32("the alias count")? as usize;
        if n > (bytes.len() - r.pos) / 4 {
            return Err(SpeechError::Format(format!("model.bin claims {n} aliases")));
        }
        for _ in 0..n {
            let alias = r.string("an alias")?;
            let target = r.string("an alias target")?;
            let v = vars.get(&target).cloned().ok_or_else(|| {
                SpeechError::Format(format!("model.bin alias {alias} names missing {target}"))
            })?;
            vars.insert(alias, v);
        }
    }
    if r.pos != bytes.len() {
        return Err(SpeechError::Format(format!(
            "model.bin has {} unknown bytes after its aliases",
            bytes.len() - r.pos
        )));
    }
    Ok(Ct2File {
        version,
        spec,
        revision,
        vars,
    })
}
