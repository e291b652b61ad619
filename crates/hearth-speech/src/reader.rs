//! A bounds-checked little-endian cursor over a model file's bytes, shared
//! by the CTranslate2 and ggml loaders; its errors name the file kind.

use crate::SpeechError;

pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
    /// How errors name the file ("model.bin", "ggml file").
    file: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8], file: &'static str) -> Reader<'a> {
        Reader { b, pos: 0, file }
    }

    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], SpeechError> {
        let left = self.b.len() - self.pos;
        if n > left {
            return Err(SpeechError::Format(format!(
                "{} is truncated: {what} needs {n} bytes at offset {}, {left} left",
                self.file, self.pos
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, SpeechError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, SpeechError> {
        let s = self.take(2, what)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, SpeechError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub(crate) fn i32(&mut self, what: &str) -> Result<i32, SpeechError> {
        let s = self.take(4, what)?;
        Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
}
