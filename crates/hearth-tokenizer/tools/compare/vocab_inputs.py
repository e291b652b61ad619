# Inputs for the recorded vocabulary cases (record_vocab.sh): hand-written
# texts that exercise normalisation, whitespace, scripts and special-token
# spellings, then COUNT random texts from gen_inputs.py's generator.
# usage: vocab_inputs.py OUT.bin SEED COUNT
import random
import struct
import sys

import gen_inputs

HAND = [
    "", " ", "   ", "\t", "\n", "\n\n\n", " \t \n ", "\r\n", "x\r\ny",
    "Hello world", " Hello  world ", "hello,world!", "HELLO World", "Hello World!",
    "\ufb01ne \ufb02ow", "\uff26\uff55\uff4c\uff4c\uff57\uff49\uff44\uff54\uff48 \uff11\uff12\uff13",
    "\u2460\u2461\u2462", "x\u00b2+y\u00b2", "\u00bd \u00bc", "\u2122", "wait\u2026", "\u216b",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9", "e\u0301", "\u00c5ngstr\u00f6m", "\u0130stanbul", "\u01c5",
    "\u00df stra\u00dfe STRASSE",
    "\u4e2d\u6587\u5206\u8bcd\u6d4b\u8bd5", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
    "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u0939\u093f\u0928\u094d\u0926\u0940", "\u0e44\u0e17\u0e22",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac", "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u0442\u0435\u043a\u0441\u0442",
    "emoji \U0001f600\U0001f44d\U0001f3fd\U0001f468\u200d\U0001f469\u200d\U0001f467\U0001f1eb\U0001f1f7",
    "\u200b zero width", "soft\u00adhyphen", "nbsp\u00a0here", "ideographic\u3000space", "tab\tseparated",
    "<s> <mask> </s> <pad> <unk>", "a<mask>b  <mask>  c", "[CLS] [SEP] [MASK] [UNK] [PAD]",
    "<|endoftext|>", "<start_of_turn>user\nhi<end_of_turn>", "<bos><eos>", "<|im_start|>system<|im_end|>",
    "don't won't I'm y'all WE'VE", "3.14159 1,000,000 12345678901234567890",
    "fn main() { println!(\"hi\"); }", "    indented\n        more", "def f(x):\n\treturn x**2",
    "http://example.com/a?b=c&d=e", "user@example.com",
    "a" * 70, "\U0001f999", "\x01\x02 bell\x07", "\x7f", "\ufffd", "\ufeffbom", "\ue000",
    "\u0378", "\U0010fffd", "  leading and trailing  ", "multiple     spaces", "\u00a0\u00a0",
    "\u2028line\u2029para", "\u0085next", "\u3000\u3000", "\u2009thin",
]

if __name__ == "__main__":
    out, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    random.seed(seed)
    texts = HAND + [gen_inputs.one() for _ in range(count)]
    with open(out, "wb") as f:
        for t in texts:
            b = t.encode("utf-8")
            f.write(struct.pack("<I", len(b)))
            f.write(b)
