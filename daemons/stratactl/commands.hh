// stratactl's commands; each returns the process exit code.
#pragma once

#include <chrono>
#include <string>

namespace strata::ctl {

struct Context {
    std::string runtime_dir;
    std::chrono::milliseconds timeout;
    bool json = false;
};

// Exit codes: 0 ok, 1 the command failed, 2 usage, 3 status found a daemon not up.
int cmd_status(const Context& ctx);
int cmd_reload(const Context& ctx, const std::string& name);
int cmd_metrics(const Context& ctx, const std::string& name);
int cmd_blocks_stats(const Context& ctx);

bool is_daemon_name(const std::string& name);
extern const char* const kDaemons[7];

} // namespace strata::ctl
