//! The TF.js importer on arbitrary bytes: `model.json`, a zero byte, then the bytes every
//! weight shard reads as; then shape inference and folding for a small input shape.
#![no_main]
use libfuzzer_sys::fuzz_target;
use walkout::graph::{optimize, tfjs, Dim};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (json, shard) = data.split_at(split);
    let shard = shard.get(1..).unwrap_or(&[]).to_vec();
    let Ok(g) = tfjs::from_parts(json, &|_| Ok(shard.clone()), "fuzz/model.json") else { return };
    let shapes: Vec<Vec<usize>> =
        g.inputs.iter().map(|i| i.dims.iter().map(|d| if let Dim::Fixed(n) = d { *n } else { 2 }).collect()).collect();
    if shapes.iter().all(|s| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_some_and(|n| n <= 1 << 16)) {
        let _ = optimize::specialize(&g, &shapes);
    }
});
