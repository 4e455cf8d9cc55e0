//! `include/alumet.h` compiles, and its layouts and constants are those of `src/abi.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::mem::{align_of, offset_of, size_of};

use alumet_dynamic::abi::*;

/// For each struct: C code that prints its size, alignment and field offsets, and the
/// same lines computed from the Rust definition.
macro_rules! layouts {
    ($($ty:ident: $($field:ident),*;)*) => {{
        let mut c = String::new();
        let mut rust = String::new();
        $(
            let _ = writeln!(c, "printf(\"{0} %zu %zu\\n\", sizeof({0}), _Alignof({0}));", stringify!($ty));
            let _ = writeln!(rust, "{} {} {}", stringify!($ty), size_of::<$ty>(), align_of::<$ty>());
            $(
                let _ = writeln!(c, "printf(\"{0}.{1} %zu\\n\", offsetof({0}, {1}));", stringify!($ty), stringify!($field));
                let _ = writeln!(rust, "{}.{} {}", stringify!($ty), stringify!($field), offset_of!($ty, $field));
            )*
        )*
        (c, rust)
    }};
}

#[test]
fn dynamic_abi_header_compiles_and_matches_the_rust_layouts() {
    if !common::gcc_here("dynamic_abi_header_compiles_and_matches_the_rust_layouts") {
        return;
    }
    let (c_lines, rust) = layouts! {
        AlumetStr: ptr, len;
        AlumetAttribute: key, value;
        AlumetPoint: metric, value_type, timestamp_ns, value_u64, value_f64, resource_kind,
            resource_id, consumer_kind, consumer_id, attributes, attributes_len;
        AlumetHost: abi_version, set_error, error_message, log, create_metric, add_source,
            add_output, push, buffer_len, buffer_get, metric_name;
    };
    let constants = [
        ("ALUMET_ABI_VERSION", ALUMET_ABI_VERSION as i64),
        ("ALUMET_OK", ALUMET_OK as i64),
        ("ALUMET_ERROR", ALUMET_ERROR as i64),
        ("ALUMET_RETRY", ALUMET_RETRY as i64),
        ("ALUMET_UNAVAILABLE", ALUMET_UNAVAILABLE as i64),
        ("ALUMET_U64", ALUMET_U64 as i64),
        ("ALUMET_F64", ALUMET_F64 as i64),
        ("ALUMET_LOG_ERROR", ALUMET_LOG_ERROR as i64),
        ("ALUMET_LOG_WARN", ALUMET_LOG_WARN as i64),
        ("ALUMET_LOG_INFO", ALUMET_LOG_INFO as i64),
        ("ALUMET_LOG_DEBUG", ALUMET_LOG_DEBUG as i64),
        ("ALUMET_LOG_TRACE", ALUMET_LOG_TRACE as i64),
    ];
    let mut c_consts = String::new();
    let mut rust_consts = String::new();
    for (name, value) in constants {
        let _ = writeln!(c_consts, "printf(\"{name} %lld\\n\", (long long)({name}));");
        let _ = writeln!(rust_consts, "{name} {value}");
    }
    let program = format!(
        "#include <stdio.h>\n#include \"alumet.h\"\nint main(void) {{\n{c_lines}{c_consts}return 0;\n}}\n"
    );
    let dir = common::temp_dir("abi");
    let source = dir.join("layout.c");
    std::fs::write(&source, program).unwrap();
    let exe = dir.join("layout");
    common::gcc(&[
        "-std=c11",
        "-pedantic",
        "-o",
        exe.to_str().unwrap(),
        source.to_str().unwrap(),
    ]);
    let out = std::process::Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{rust}{rust_consts}")
    );
    // The header is valid C++ too (extern "C" block), for plugins written in C++.
    let cpp = dir.join("header.cpp");
    std::fs::write(
        &cpp,
        "#include \"alumet.h\"\nint main() { return ALUMET_OK; }\n",
    )
    .unwrap();
    if std::process::Command::new("g++")
        .arg("--version")
        .output()
        .is_ok()
    {
        common::gcc(&["-x", "c++", "-fsyntax-only", cpp.to_str().unwrap()]);
    }
}
