// Renders chat templates with llama.cpp's chat layer (common/chat.h with
// use_jinja) so that hearth's renderer can be compared against it byte for byte.
//
//   record-templates TEMPLATE.jinja CONVERSATION.json BOS EOS
//
// CONVERSATION.json is an OpenAI-style request body: {"messages": [...],
// "tools": [...]} (tools optional). The prompt goes to stdout; when llama.cpp
// refuses the template or the conversation, the reason goes to stderr and the
// exit status is 1. The clock is pinned (see below) so that templates that
// print today's date give the same text every time.

#include "chat.h"
#include "json.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>

// 2025-03-14 09:26:53 UTC, the instant every recording is made at.
static const time_t FIXED_NOW = 1741944413;

// strftime_now and the `datetime` context variable read the wall clock
// directly; this executable's definitions take precedence over libc's.
extern "C" time_t time(time_t * t) {
    if (t) {
        *t = FIXED_NOW;
    }
    return FIXED_NOW;
}

extern "C" int clock_gettime(clockid_t clk, struct timespec * ts) {
    if (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE) {
        ts->tv_sec  = FIXED_NOW;
        ts->tv_nsec = 0;
        return 0;
    }
    return (int) syscall(SYS_clock_gettime, clk, ts);
}

static std::string slurp(const char * path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        throw std::runtime_error(std::string("cannot read ") + path);
    }
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

int main(int argc, char ** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s TEMPLATE.jinja CONVERSATION.json BOS EOS\n", argv[0]);
        return 2;
    }
    std::string source = slurp(argv[1]);
    common_json conv   = common_json::parse(slurp(argv[2]));
    try {
        auto tmpls = common_chat_templates_init(nullptr, source, argv[3], argv[4]);
        common_chat_templates_inputs inputs;
        inputs.use_jinja             = true;
        inputs.add_generation_prompt = true;
        inputs.now                   = std::chrono::system_clock::from_time_t(FIXED_NOW);
        inputs.messages              = common_chat_msgs_parse_oaicompat(conv.at("messages"));
        if (conv.contains("tools")) {
            inputs.tools = common_chat_tools_parse_oaicompat(conv.at("tools"));
        }
        auto params = common_chat_templates_apply(tmpls.get(), inputs);
        std::fwrite(params.prompt.data(), 1, params.prompt.size(), stdout);
    } catch (const std::exception & e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
