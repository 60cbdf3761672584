// stratactl's commands; each returns the process exit code.
#pragma once

#include "http_client/client.hh"

#include <chrono>
#include <string>
#include <vector>

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

int cmd_meta_stats(const Context& ctx);
// args: {"list"} | {"add", NAME, EMAIL} (password on stdin) | {"disable"|"enable", NAME|ID}
int cmd_meta_user(const Context& ctx, const std::vector<std::string>& args);
int cmd_meta_backup(const Context& ctx, const std::string& file);
// Offline: metad must be stopped. Replaces STATE_DIR/db with the backup.
int cmd_meta_restore(const Context& ctx, const std::string& file, const std::string& state_dir);

// args: {"queue"} | {"jobs"} | {"jobs", ID} | {"cancel", ID} | {"retry", ID}
int cmd_transcode(const Context& ctx, const std::vector<std::string>& args);

// Prints the Ed25519 public key (hex) of a session key file (its seed), as gatewayd reads it.
int cmd_auth_public_key(const std::string& key_file);

bool is_daemon_name(const std::string& name);
std::string socket_of(const Context& ctx, const std::string& name);
http_client::Client client_for(const Context& ctx, const std::string& name);
// One line that says what is wrong in operator terms.
std::string explain(const Context& ctx, const std::string& name, const http_client::Error& e);
extern const char* const kDaemons[7];

} // namespace strata::ctl
