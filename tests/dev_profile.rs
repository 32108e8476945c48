//! The CPU kernels time real work even in test builds, so the GEMM library and everything it
//! runs on are compiled at opt-level 3 in the dev profile (`[profile.dev.package.*]` blocks in
//! `Cargo.toml`). Cargo has no "this crate and its dependencies" form for those blocks, so a
//! dependency the GEMM library gains in an update would build unoptimised without a word; this
//! test walks `Cargo.lock` and names any such crate.

use std::collections::{BTreeMap, BTreeSet};

fn read_toml(name: &str) -> toml::Table {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    toml::from_str(&text).unwrap()
}

/// Every package `root` depends on, transitively, by name (all locked versions merged).
fn closure(lock: &toml::Table, root: &str) -> BTreeSet<String> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in lock["package"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap().to_string();
        let entry = deps.entry(name).or_default();
        for dep in package
            .get("dependencies")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
        {
            // "name" or "name version" or "name version (source)".
            let dep = dep.as_str().unwrap();
            entry.insert(dep.split(' ').next().unwrap().to_string());
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone()) {
            todo.extend(deps.get(&name).into_iter().flatten().cloned());
        }
    }
    seen
}

#[test]
fn the_gemm_library_and_everything_it_runs_on_are_optimised_in_dev_builds() {
    let manifest = read_toml("Cargo.toml");
    let lock = read_toml("Cargo.lock");
    let optimised: BTreeSet<String> = manifest["profile"]["dev"]["package"]
        .as_table()
        .unwrap()
        .iter()
        .filter(|(_, settings)| settings.get("opt-level").and_then(|l| l.as_integer()) == Some(3))
        .map(|(name, _)| name.clone())
        .collect();
    // The crates the CPU kernels call inside timed loops.
    for root in ["gemm", "rayon", "half"] {
        let needed = closure(&lock, root);
        assert!(
            needed.len() > 1 || root != "gemm",
            "{root} not found in Cargo.lock"
        );
        let missing: Vec<&String> = needed
            .iter()
            .filter(|name| !not_in_timed_loops(name))
            .filter(|name| !optimised.contains(*name))
            .collect();
        assert!(
            missing.is_empty(),
            "add [profile.dev.package.NAME] opt-level = 3 to Cargo.toml for {missing:?}, \
             which {root} runs on"
        );
    }
}

/// Crates the kernels depend on that do not run inside the timed loops: compile-time helpers
/// (proc macros, build scripts), platform shims, error and serialisation types, one-time
/// set-up. A new dependency must be added here or to the profile: that decision is the point.
fn not_in_timed_loops(name: &str) -> bool {
    matches!(
        name,
        "proc-macro2"
            | "quote"
            | "syn"
            | "unicode-ident"
            | "serde_derive"
            | "thiserror-impl"
            | "bytemuck_derive"
            | "autocfg"
            | "version_check"
            | "paste"
            | "seq-macro"
            | "cc"
            | "shlex"
            | "find-msvc-tools"
            | "heck"
            | "enum-as-inner"
            | "dyn-stack-macros"
            | "zerocopy-derive"
            | "pulp-wasm-simd-flag"
            | "bitflags"
            | "byteorder"
            | "cfg-if"
            | "crunchy"
            | "either"
            | "libc"
            | "once_cell"
            | "same-file"
            | "walkdir"
            | "sysctl"
            | "serde"
            | "serde_core"
            | "thiserror"
            | "zerocopy"
            | "winapi-util"
    ) || name.starts_with("windows")
}
