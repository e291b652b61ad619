# Writes the recorded vocabulary cases from llama.cpp's outputs (see
# record_vocab.sh): usage record_vocab.py INPUTS.bin NAME OUT_DIR COMMIT
#   C00.txt C11.txt (harness outputs for add_special/parse_special 0 0 and 1 1)
import json
import struct
import sys


def read_inputs(path):
    data = open(path, "rb").read()
    out, i = [], 0
    while i < len(data):
        (n,) = struct.unpack_from("<I", data, i)
        out.append(data[i + 4:i + 4 + n].decode("utf-8"))
        i += 4 + n
    return out


def read_harness(path):
    lines = open(path, "rb").read().decode("ascii").split("\n")
    recs = []
    for k in range(0, len(lines) - 2, 3):
        ids = [int(x) for x in lines[k].split()]
        # Detokenized bytes must be UTF-8 to be stored as JSON strings.
        special = bytes.fromhex(lines[k + 1]).decode("utf-8")
        plain = bytes.fromhex(lines[k + 2]).decode("utf-8")
        recs.append((ids, special, plain))
    return recs


inputs_bin, name, out_dir, commit, c00, c11 = sys.argv[1:7]
texts = read_inputs(inputs_bin)
r00, r11 = read_harness(c00), read_harness(c11)
assert len(texts) == len(r00) == len(r11)

# The inputs, once, in test-tokenizer-0's format.
with open(f"{out_dir}/inputs.inp", "w", encoding="utf-8", newline="") as f:
    f.write("".join(t + "\n__ggml_vocab_test__\n" for t in texts))
# Ids with add_special = parse_special = false, one line per input.
with open(f"{out_dir}/{name}.gguf.out", "w", encoding="utf-8", newline="") as f:
    f.write("".join(" ".join(map(str, r[0])) + "\n" for r in r00))

# add_special = parse_special = true: one line per input, with
# llama_detokenize's output rendering special tokens ("special") and not
# ("plain", left out when the same).
with open(f"{out_dir}/{name}.special.jsonl", "w", encoding="utf-8") as f:
    f.write(json.dumps({"llama_cpp_commit": commit, "add_special": True, "parse_special": True}) + "\n")
    for ids, special, plain in r11:
        case = {"ids": ids, "special": special}
        if plain != special:
            case["plain"] = plain
        f.write(json.dumps(case, ensure_ascii=False) + "\n")
