# Random test texts for tools/compare/run.sh: usage gen_inputs.py OUT.bin SEED COUNT
import random, struct, sys
pools = [
 list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
 list("0123456789"),
 list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
 [" ", " ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", "\u00a0", "\u3000", "\u2009", "\x0b", "\x0c", "\x85", "\u2028", "\u200b", "   ", "\t\t"],
 ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ll", "'D", "'x", "''"],
 list("éèàçñüöäßøåÉÀÇÑÜ"), list("αβγδΩλμπΣ"), list("абвгдЖЯЩ"),
 list("你好世界中文字漢"), list("こんにちはカタカナ"), list("한국어안녕"),
 ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "🎉", "\u200d", "\ufe0f"],
 ["\u0301", "\u0308", "e\u0301", "\u064b"], list("مرحباשלום"), list("สวัสดีनमस्ते"),
 list("∑∫√≤≥≠±×÷°€£¥©®™"), ["\u0378", "\ue000", "\U0010fffd", "\U0001f9ff", "\ufffd", "\ufeff", "\x01", "\x1f", "\x7f", "\u0080", "\u00ad"],
 ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "</s>", "<s>", "<unused5>", "<table>", "<pad>", "<mask>", "[multimodal]", "<reponame>", "<|im_start", "im_end|>", "<start_of_image>"],
 ["hello", " world", " the", " The", "Hello", "function", " return", "    ", "123456789", "3.14159", "1,000", "http://x.y/z?q=1", "a@b.com", "fn main() {", "    let x = 1;"],
]
def one():
    k = random.choice([0,1,2,3,5,8,13,20,40,80])
    out = []
    for _ in range(k):
        p = random.choice(pools)
        s = random.choice(p)
        if random.random() < 0.05: s = s * random.randint(2, 40)
        out.append(s)
    return "".join(out)
if __name__ == "__main__":
  seed=int(sys.argv[2]); n=int(sys.argv[3]); random.seed(seed)
  with open(sys.argv[1], "wb") as f:
    for _ in range(n):
        b = one().encode("utf-8")
        f.write(struct.pack("<I", len(b))); f.write(b)
