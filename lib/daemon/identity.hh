// The system user and group a daemon runs as, and the switch to them after binding.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

namespace strata::daemon {

struct Identity {
    uid_t uid;
    gid_t gid;
};

// Looks up user (and group, when not empty). Throws std::runtime_error with a hint when the
// user does not exist.
Identity lookup_identity(const std::string& user, const std::string& group);
std::optional<gid_t> lookup_group(const std::string& group);

// setgroups + setgid + setuid; verifies that root cannot be regained.
void switch_to(const Identity& identity);

} // namespace strata::daemon
