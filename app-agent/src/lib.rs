//! The standard agent, `alumet-agent`: its command line, config file, plugin list and
//! modes. The binary (`main.rs`) only dispatches; everything else is here so that tests can
//! drive it in-process.

pub mod cli;
pub mod config;
pub mod control;
pub mod exec;
pub mod memory;
pub mod notify;
pub mod plugins;
pub mod reload;
pub mod report;
pub mod run;
pub mod self_plugin;

#[cfg(test)]
mod tests {
    /// build.rs links the unwinder statically (with the library's targets too): a panic
    /// still unwinds, running destructors, to `catch_unwind`, and the process has no
    /// libgcc_s to do it.
    #[test]
    fn panics_unwind_with_the_static_unwinder() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static DROPPED: AtomicBool = AtomicBool::new(false);
        struct Guard;
        impl Drop for Guard {
            fn drop(&mut self) {
                DROPPED.store(true, Ordering::SeqCst);
            }
        }
        let caught = std::panic::catch_unwind(|| {
            let _guard = Guard;
            std::panic::resume_unwind(Box::new("raised on purpose"));
        });
        let payload = caught.expect_err("the panic is caught");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"raised on purpose"));
        assert!(DROPPED.load(Ordering::SeqCst), "the guard was dropped");
        let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
        assert_eq!(
            maps.contains("libgcc_s"),
            env!("ALUMET_STATIC_UNWINDER") != "1",
            "{maps}"
        );
    }
}
