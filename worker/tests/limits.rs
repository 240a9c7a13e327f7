//! `proofline-worker` sizes use checked arithmetic: a `--cache-mib` whose bytes
//! overflow 64 bits is bad input (exit 2) naming the flag, never a wrapped size.

use std::process::Command;

#[test]
fn cache_mib_that_overflows_is_bad_input_naming_the_flag() {
    for (args, env) in [
        (&["--cache-mib", "18446744073709551615"][..], None),
        (&[][..], Some("17592186044416")), // 2^44 MiB = 2^64 bytes
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_proofline-worker"));
        cmd.args(args).args(["--health-addr", "127.0.0.1:0", "--store", "mem:"]);
        if let Some(value) = env {
            cmd.env("PROOFLINE_CACHE_MIB", value);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {err}");
        assert!(err.contains("--cache-mib") && err.contains("too large"), "{err}");
    }
}
