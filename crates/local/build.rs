// The workspace root's build script: sets `MGRAPH_DEPLOY_VERSION` (version and commit).
include!("../../build.rs");
