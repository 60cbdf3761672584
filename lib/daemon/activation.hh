// Sockets passed by systemd socket activation, looked up by FileDescriptorName=.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace strata::daemon {

class ActivatedSockets {
public:
    // Reads LISTEN_FDS/LISTEN_FDNAMES once (and unsets them, so children do not inherit them).
    static ActivatedSockets from_environment();

    // Takes (removes) the fds with that name; empty when systemd passed none.
    std::vector<int> take(const std::string& name);
    bool empty() const { return by_name_.empty(); }
    // Fds nobody took (a unit passing a socket the daemon does not know): closed by the caller.
    std::vector<std::string> leftover_names() const;
    void close_leftovers();

private:
    std::map<std::string, std::vector<int>> by_name_;
};

} // namespace strata::daemon
