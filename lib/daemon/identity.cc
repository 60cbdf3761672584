#include "daemon/identity.hh"

#include <cerrno>
#include <grp.h>
#include <pwd.h>
#include <stdexcept>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace strata::daemon {

std::optional<gid_t> lookup_group(const std::string& group) {
    if (group.empty()) return std::nullopt;
    std::vector<char> buf(16384);
    struct group gr {};
    struct group* found = nullptr;
    getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found);
    if (!found) return std::nullopt;
    return found->gr_gid;
}

Identity lookup_identity(const std::string& user, const std::string& group) {
    std::vector<char> buf(16384);
    struct passwd pw {};
    struct passwd* found = nullptr;
    getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
    if (!found)
        throw std::runtime_error("user '" + user +
                                 "' does not exist (create it with systemd-sysusers, or set "
                                 "daemon.user = \"\" to keep the current user)");
    Identity id{found->pw_uid, found->pw_gid};
    if (!group.empty()) {
        auto gid = lookup_group(group);
        if (!gid) throw std::runtime_error("group '" + group + "' does not exist");
        id.gid = *gid;
    }
    return id;
}

void switch_to(const Identity& identity) {
    if (setgroups(0, nullptr) != 0)
        throw std::system_error(errno, std::generic_category(), "setgroups");
    if (setgid(identity.gid) != 0)
        throw std::system_error(errno, std::generic_category(), "setgid");
    if (setuid(identity.uid) != 0)
        throw std::system_error(errno, std::generic_category(), "setuid");
    if (identity.uid != 0 && setuid(0) == 0)
        throw std::runtime_error("could regain root after dropping privileges");
}

} // namespace strata::daemon
