// The oracle of crates/hearth-quantize/tests/llama_quantize.rs: llama.cpp's
// llama_model_quantize with a GGUF importance matrix, as llama-quantize
// runs it (imatrix values = sums / rounded counts; the quantize.imatrix.*
// metadata). Built and run by scripts/gen-quantize-oracle.sh.
#include "llama.h"
#include "gguf.h"
#include "ggml.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <map>
#include <string>
#include <vector>
int main(int argc, char ** argv) {
    if (argc < 4) { fprintf(stderr, "usage: drv IN OUT FTYPE [IMATRIX]\n"); return 1; }
    llama_backend_init();
    auto p = llama_model_quantize_default_params();
    p.ftype = (llama_ftype) atoi(argv[3]);
    p.nthread = 1;
    std::map<std::string, std::vector<float>> data;
    std::vector<llama_model_imatrix_data> idata;
    std::vector<llama_model_kv_override> kvo;
    if (argc > 4) {
        ggml_context * ctx = nullptr;
        gguf_init_params ip = { false, &ctx };
        gguf_context * g = gguf_init_from_file(argv[4], ip);
        if (!g) { fprintf(stderr, "bad imatrix\n"); return 1; }
        std::map<std::string, std::pair<ggml_tensor*, ggml_tensor*>> sc;
        for (int64_t i = 0; i < gguf_get_n_tensors(g); ++i) {
            std::string n = gguf_get_tensor_name(g, i);
            ggml_tensor * t = ggml_get_tensor(ctx, n.c_str());
            auto ends = [&](const char * s) { size_t l = strlen(s); return n.size() > l && n.compare(n.size() - l, l, s) == 0; };
            if (ends(".in_sum2")) sc[n.substr(0, n.size() - 8)].first = t;
            else if (ends(".counts")) sc[n.substr(0, n.size() - 7)].second = t;
        }
        for (auto & [name, st] : sc) {
            int64_t nval = ggml_nelements(st.first), nc = ggml_nelements(st.second);
            int64_t ne0 = nval / nc;
            auto & e = data[name];
            e.resize(nval);
            for (int64_t j = 0; j < nc; ++j) {
                float c = (float) std::lround(((float *) st.second->data)[j]);
                for (int64_t i = 0; i < ne0; ++i)
                    e[j*ne0 + i] = c > 0 ? ((float *) st.first->data)[j*ne0 + i] / c : 1.0f;
            }
        }
        for (auto & [n, v] : data) idata.push_back({ n.c_str(), v.data(), v.size() });
        idata.push_back({ nullptr, nullptr, 0 });
        p.imatrix = idata.data();
        llama_model_kv_override o{};
        strcpy(o.key, "quantize.imatrix.file"); o.tag = LLAMA_KV_OVERRIDE_TYPE_STR; strncpy(o.val_str, argv[4], 127); kvo.push_back(o);
        int64_t dk = gguf_find_key(g, "imatrix.datasets");
        if (dk >= 0 && gguf_get_arr_n(g, dk) > 0) {
            llama_model_kv_override d{}; strcpy(d.key, "quantize.imatrix.dataset"); d.tag = LLAMA_KV_OVERRIDE_TYPE_STR;
            strncpy(d.val_str, gguf_get_arr_str(g, dk, 0), 127); kvo.push_back(d);
        }
        llama_model_kv_override n{}; strcpy(n.key, "quantize.imatrix.entries_count"); n.tag = LLAMA_KV_OVERRIDE_TYPE_INT; n.val_i64 = (int64_t) data.size(); kvo.push_back(n);
        llama_model_kv_override c{}; strcpy(c.key, "quantize.imatrix.chunks_count"); c.tag = LLAMA_KV_OVERRIDE_TYPE_INT;
        c.val_i64 = gguf_get_val_u32(g, gguf_find_key(g, "imatrix.chunk_count")); kvo.push_back(c);
        kvo.push_back(llama_model_kv_override{});
        p.kv_overrides = kvo.data();
    }
    uint32_t r = llama_model_quantize(argv[1], argv[2], &p);
    llama_backend_free();
    return r ? 1 : 0;
}
