//! The house rules a restructure keeps, checked on the sources themselves so
//! the next addition cannot quietly break them: one name per public type,
//! one file that asks the CPU what it has, at most three public scan entries,
//! one generator of test numbers per crate.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

/// Every `.rs` file under the service's `src/` and the workspace's `crates/`.
fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    crate::docs::rust_files(&root.join("src"), &mut out);
    crate::docs::rust_files(&root.join("crates"), &mut out);
    out.sort();
    assert!(out.len() > 50, "found only {} source files under {}", out.len(), root.display());
    out
}

/// The name of each `pub struct|enum|trait|type Name` declared in a line of `text`.
fn public_types(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix("pub ") else { continue };
        for kind in ["struct ", "enum ", "trait ", "type "] {
            if let Some(after) = rest.strip_prefix(kind) {
                let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    names.push(name);
                }
            }
        }
    }
    names
}

#[test]
fn no_public_type_name_is_defined_twice() {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in sources() {
        let text = fs::read_to_string(&path).expect("a source file reads");
        for name in public_types(&text) {
            seen.entry(name).or_default().push(path.display().to_string());
        }
    }
    let twins: Vec<_> = seen.iter().filter(|(_, files)| files.len() > 1).collect();
    assert!(twins.is_empty(), "public type names defined more than once: {twins:#?}");
}

#[test]
fn the_parser_of_this_test_sees_what_it_checks() {
    let names =
        public_types("pub struct A;\n    pub enum B { X }\npub(crate) struct C;\npub trait D {}\npub type E = u8;\n");
    assert_eq!(names, ["A", "B", "D", "E"]);
}

#[test]
fn cpu_features_are_detected_in_one_file() {
    let files: Vec<_> = sources()
        .into_iter()
        .filter(|p| fs::read_to_string(p).is_ok_and(|t| t.contains(concat!("is_x86_feature_", "detected!("))))
        .collect();
    assert_eq!(files.len(), 1, "is_x86_feature_detected! in {files:?}");
}

#[test]
fn at_most_three_public_top_k_functions() {
    let mut found = Vec::new();
    for path in sources() {
        let text = fs::read_to_string(&path).expect("a source file reads");
        for line in text.lines() {
            let line = line.trim_start();
            if let Some(rest) = line.strip_prefix("pub fn top_k") {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                found.push(format!("top_k{name} in {}", path.display()));
            }
        }
    }
    assert!(!found.is_empty() && found.len() <= 3, "public top_k functions: {found:#?}");
}

#[test]
fn tests_draw_arbitrary_numbers_from_one_generator_per_crate() {
    // The scan crate has no RNG dependency and keeps one xorshift in
    // `test_rng`; the service's tests use the `rand` dev-dependency. A
    // hand-written shift step elsewhere is an eighth copy coming back.
    let shift = concat!("^= ", "s << 13");
    let files: Vec<_> = sources()
        .into_iter()
        .filter(|p| fs::read_to_string(p).is_ok_and(|t| t.replace("state", "s").contains(shift)))
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(files.len(), 1, "hand-written xorshift steps in {files:#?}");
    assert!(files[0].ends_with("test_rng.rs"), "{files:?}");
}
