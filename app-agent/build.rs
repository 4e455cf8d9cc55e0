//! Links the unwinder statically (gcc's `libgcc_eh.a`) on Linux with glibc, where Rust's
//! standard library would otherwise load `libgcc_s.so.1` at every start: one library
//! fewer for the dynamic loader to find, map, relocate and initialise (its constructor
//! probes the CPU with `cpuid`), 0.08-0.19 ms of `exec -- true` (issue #5,
//! docs/performance.md).
//!
//! The archive is found by the linker itself at the final link (`-bundle`), so it is the
//! one of the target's toolchain; this script only asks that linker whether it has one
//! (`-print-file-name`), and otherwise warns and leaves the binary on `libgcc_s.so.1`.
//! `ALUMET_STATIC_UNWINDER` (1 or 0) tells the tests which it is.
//!
//! The unwinder's symbols stay local to the binary, so a plugin library loaded later
//! brings its own `libgcc_s`. A panic caught where it is raised (in the agent, or by the
//! plugin SDK on the plugin's side) involves one unwinder only. One that reaches the
//! plugin boundary (a bug) aborts there (its functions are `extern "C"`), but the search
//! for a handler first calls the other side's personality routine with the raising
//! unwinder's context: that relies on gcc keeping the context compatible between its
//! static and shared unwinders, as it does for `-static-libgcc` programs.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os != "linux" || target_env != "gnu" {
        println!("cargo:rustc-env=ALUMET_STATIC_UNWINDER=0");
        return;
    }
    let found = match linker() {
        Ok(linker) => match has_static_unwinder(&linker) {
            Ok(true) => true,
            Ok(false) => {
                println!("cargo:warning={linker} has no libgcc_eh.a: the agent will load libgcc_s.so.1 at start (about 0.1 ms more)");
                false
            }
            Err(e) => {
                println!("cargo:warning=cannot run the linker {linker} to look for libgcc_eh.a ({e}): the agent will load libgcc_s.so.1 at start (about 0.1 ms more)");
                false
            }
        },
        Err(why) => {
            println!("cargo:warning={why}: the agent will load libgcc_s.so.1 at start (about 0.1 ms more)");
            false
        }
    };
    if found {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
    println!("cargo:rustc-env=ALUMET_STATIC_UNWINDER={}", u8::from(found));
}

/// The linker rustc drives: the configured one (Cargo passes `target.<triple>.linker` as
/// `RUSTC_LINKER`), else `cc`, which is the host's, so not for a cross build.
fn linker() -> Result<String, String> {
    if let Ok(linker) = std::env::var("RUSTC_LINKER") {
        return Ok(linker);
    }
    let target = std::env::var("TARGET").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    if target == host {
        Ok("cc".to_owned())
    } else {
        Err(format!(
            "no linker configured for {target} (target.{target}.linker) to ask for libgcc_eh.a"
        ))
    }
}

/// Whether `linker` (a C compiler driver) has `libgcc_eh.a` for the target.
fn has_static_unwinder(linker: &str) -> std::io::Result<bool> {
    let mut command = Command::new(linker);
    // rustc passes -m32 when it links for 32-bit x86 with the host's compiler.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86") {
        command.arg("-m32");
    }
    let output = command.arg("-print-file-name=libgcc_eh.a").output()?;
    let path = String::from_utf8_lossy(&output.stdout);
    let path = std::path::Path::new(path.trim());
    // Without it, the driver prints the bare name back.
    Ok(output.status.success() && path.is_absolute() && path.is_file())
}
