//! The ONNX importer on arbitrary bytes, then shape inference and constant folding for a
//! small fixed input shape, as a server does when it loads a model.
#![no_main]
use libfuzzer_sys::fuzz_target;
use walkout::graph::{onnx, optimize, Dim};

fuzz_target!(|data: &[u8]| {
    // external data resolves inside an empty folder: every reference is refused or missing
    let dir = std::env::temp_dir().join("walkout-fuzz-empty");
    let _ = std::fs::create_dir_all(&dir);
    let Ok(g) = onnx::from_bytes(data, &dir, "fuzz.onnx") else { return };
    let shapes: Vec<Vec<usize>> =
        g.inputs.iter().map(|i| i.dims.iter().map(|d| if let Dim::Fixed(n) = d { *n } else { 2 }).collect()).collect();
    // the importer accepts any declared size; specialise only what a small request would send
    if shapes.iter().all(|s| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_some_and(|n| n <= 1 << 16)) {
        let _ = optimize::specialize(&g, &shapes);
    }
});
