//! Shared test helpers: repository paths and fetched data.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fetched file; panics with the command that fetches it when missing.
pub fn fetched(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.exists(), "{} is missing: run scripts/test (it fetches models, data and TF.js references)", p.display());
    p
}

pub fn movenet_json() -> PathBuf {
    fetched("models/movenet-multipose/1/model.json")
}
