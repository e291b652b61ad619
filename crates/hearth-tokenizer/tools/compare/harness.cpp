// llama.cpp side of tools/compare/run.sh: tokenizes each input record with a
// vocab-only model and writes ids, detokenize(special) and detokenize(plain)
// (hex) per record. usage: harness MODEL INPUTS OUT add_special parse_special
#include "llama.h"
#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>
#include <fstream>
#include <cstring>
static std::string hex(const std::string & s) { static const char*h="0123456789abcdef"; std::string r; for (unsigned char c: s){r+=h[c>>4]; r+=h[c&15];} return r; }
static std::string detok(const llama_vocab * v, const std::vector<llama_token> & ids, bool special) {
    std::string out(ids.size()*16+64, '\0');
    int n = llama_detokenize(v, ids.data(), ids.size(), &out[0], out.size(), false, special);
    if (n < 0) { out.resize(-n); n = llama_detokenize(v, ids.data(), ids.size(), &out[0], out.size(), false, special); }
    out.resize(n); return out;
}
int main(int argc, char ** argv) {
    llama_log_set([](ggml_log_level, const char *, void *){}, nullptr);
    llama_backend_init();
    auto mp = llama_model_default_params(); mp.vocab_only = true;
    llama_model * m = llama_model_load_from_file(argv[1], mp);
    if (!m) { fprintf(stderr, "load failed\n"); return 1; }
    const llama_vocab * v = llama_model_get_vocab(m);
    std::ifstream in(argv[2], std::ios::binary); std::string buf((std::istreambuf_iterator<char>(in)), {});
    FILE * out = fopen(argv[3], "wb");
    bool add = argv[4][0]=='1', parse = argv[5][0]=='1';
    size_t i = 0;
    while (i < buf.size()) {
        uint32_t n; memcpy(&n, &buf[i], 4); i += 4; std::string s = buf.substr(i, n); i += n;
        std::vector<llama_token> ids(s.size()*2 + 16);
        int k = llama_tokenize(v, s.data(), s.size(), ids.data(), ids.size(), add, parse);
        if (k < 0) { ids.resize(-k); k = llama_tokenize(v, s.data(), s.size(), ids.data(), ids.size(), add, parse); }
        ids.resize(k);
        for (int j = 0; j < k; j++) fprintf(out, j ? " %d" : "%d", ids[j]);
        fprintf(out, "\n%s\n%s\n", hex(detok(v, ids, true)).c_str(), hex(detok(v, ids, false)).c_str());
    }
    fclose(out);
    return 0;
}
