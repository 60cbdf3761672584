#include "daemon/activation.hh"

#include <cstdlib>
#include <systemd/sd-daemon.h>
#include <unistd.h>

namespace strata::daemon {

ActivatedSockets ActivatedSockets::from_environment() {
    ActivatedSockets out;
    char** names = nullptr;
    int n = sd_listen_fds_with_names(1, &names);
    for (int i = 0; i < n; ++i) {
        std::string name = names && names[i] ? names[i] : "unknown";
        // A lone socket without FileDescriptorName= is the control socket.
        if (n == 1 && (name == "unknown" || name.empty())) name = "control";
        out.by_name_[name].push_back(SD_LISTEN_FDS_START + i);
    }
    if (names) {
        for (int i = 0; i < n; ++i)
            std::free(names[i]);
        std::free(names);
    }
    return out;
}

std::vector<int> ActivatedSockets::take(const std::string& name) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return {};
    auto fds = std::move(it->second);
    by_name_.erase(it);
    return fds;
}

std::vector<std::string> ActivatedSockets::leftover_names() const {
    std::vector<std::string> out;
    for (const auto& [name, fds] : by_name_)
        out.push_back(name);
    return out;
}

void ActivatedSockets::close_leftovers() {
    for (auto& [name, fds] : by_name_)
        for (int fd : fds)
            close(fd);
    by_name_.clear();
}

} // namespace strata::daemon
