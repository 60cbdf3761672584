// strata-notifyd: notification queue and fan-out.
// This release provides the common daemon runtime only (control socket, health, metrics,
// status, reload); the role itself comes with its own issue.
#include "daemon/runtime.hh"

int main(int argc, char** argv) {
    static const strata::daemon::Spec spec{
        .name = "notifyd",
        .summary = "Strata notification queue and fan-out.",
        .state_dir = "/var/lib/strata/notify",
    };
    return strata::daemon::main(argc, argv, spec);
}
