// strata-transcoded: video and image processing queue.
// This release provides the common daemon runtime only (control socket, health, metrics,
// status, reload); the role itself comes with its own issue.
#include "daemon/runtime.hh"

int main(int argc, char** argv) {
    static const strata::daemon::Spec spec{
        .name = "transcoded",
        .summary = "Strata video and image processing queue.",
        .state_dir = "/var/lib/strata/transcode",
    };
    return strata::daemon::main(argc, argv, spec);
}
