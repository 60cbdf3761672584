// A daemon's state directory, held with an exclusive lock so two instances never share it.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

namespace strata::daemon {

class StateDir {
public:
    // Creates `path` (0750, parents too) when missing, chowns it to `owner` when given (a root
    // start that will switch users), and takes flock(LOCK_EX|LOCK_NB) on path/lock.
    // Throws std::runtime_error naming the path, and the holder's pid when locked.
    StateDir(const std::string& path, std::optional<std::pair<uid_t, gid_t>> owner);
    ~StateDir();
    StateDir(const StateDir&) = delete;
    StateDir& operator=(const StateDir&) = delete;

    const std::string& path() const { return path_; }

private:
    std::string path_;
    int lock_fd_ = -1;
};

} // namespace strata::daemon
