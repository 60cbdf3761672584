// strata-dnsd: authoritative DNS server for the platform's zones.
// This release provides the common daemon runtime only (control socket, health, metrics,
// status, reload); the role itself comes with its own issue.
#include "daemon/runtime.hh"

int main(int argc, char** argv) {
    static const strata::daemon::Spec spec{
        .name = "dnsd",
        .summary = "Strata authoritative DNS server for the platform's zones.",
        .state_dir = "",
    };
    return strata::daemon::main(argc, argv, spec);
}
