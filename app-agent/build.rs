//! Links the unwinder statically (gcc's `libgcc_eh.a`) on Linux with glibc, where Rust's
//! standard library would otherwise load `libgcc_s.so.1` at every start: one library
//! fewer for the dynamic loader to find, map, relocate and initialise (its constructor
//! probes the CPU with `cpuid`), 0.08-0.19 ms of `exec -- true` (issue #5,
//! docs/performance.md).
//!
//! The unwinder's symbols stay local to the binary, so a plugin library loaded later
//! brings its own `libgcc_s`. The two never meet: a panic cannot cross the plugin
//! boundary (its functions are `extern "C"`, which abort on unwinding, and the plugin SDK
//! catches panics on its side), so each unwinder only walks frames of its own exceptions.
//!
//! Where the C compiler does not know `libgcc_eh.a` (another toolchain), the build warns
//! and the binary uses `libgcc_s.so.1` as before.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["CC", "TARGET_CC"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os != "linux" || target_env != "gnu" {
        return;
    }
    match static_unwinder() {
        Some(archive) => {
            if let Some(dir) = archive.parent() {
                println!("cargo:rustc-link-search=native={}", dir.display());
            }
            println!("cargo:rustc-link-lib=static=gcc_eh");
        }
        None => println!(
            "cargo:warning=libgcc_eh.a not found by the C compiler: the agent will load libgcc_s.so.1 at start (about 0.1 ms more)"
        ),
    }
}

/// Where the C compiler (the linker rustc drives) finds `libgcc_eh.a`, if it does.
fn static_unwinder() -> Option<PathBuf> {
    let target = std::env::var("TARGET").unwrap_or_default();
    let cc = [
        format!("CC_{}", target.replace('-', "_")),
        "TARGET_CC".to_owned(),
        "CC".to_owned(),
    ]
    .iter()
    .find_map(|var| std::env::var(var).ok())
    .unwrap_or_else(|| "cc".to_owned());
    let output = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    // Without it, the compiler prints the bare name back.
    (output.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
