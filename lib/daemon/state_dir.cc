#include "daemon/state_dir.hh"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace strata::daemon {

StateDir::StateDir(const std::string& path, std::optional<std::pair<uid_t, gid_t>> owner)
    : path_(path) {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) throw std::runtime_error(path + ": cannot create state directory: " + ec.message());
    if (owner) {
        if (chown(path.c_str(), owner->first, owner->second) != 0)
            throw std::runtime_error(path + ": chown: " + std::strerror(errno));
    }
    chmod(path.c_str(), 0750);
    std::string lock = path + "/lock";
    lock_fd_ = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (lock_fd_ < 0) throw std::runtime_error(lock + ": " + std::strerror(errno));
    if (owner) fchown(lock_fd_, owner->first, owner->second);
    if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {};
        ssize_t n = pread(lock_fd_, buf, sizeof buf - 1, 0);
        close(lock_fd_);
        lock_fd_ = -1;
        throw std::runtime_error(path + ": in use by another instance" +
                                 (n > 0 ? std::string(" (pid ") + buf + ")" : std::string()));
    }
    // Record our pid for the message above; the lock, not the content, is what protects.
    std::string pid = std::to_string(getpid());
    if (ftruncate(lock_fd_, 0) == 0) pwrite(lock_fd_, pid.data(), pid.size(), 0);
}

StateDir::~StateDir() {
    if (lock_fd_ >= 0) close(lock_fd_); // releases the flock
}

} // namespace strata::daemon
