//! NumPy `.npy` parsing; what parses writes back and parses again to the same tensor.
#![no_main]
use libfuzzer_sys::fuzz_target;
use walkout::npy;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = npy::parse(data, "fuzz.npy") else { return };
    assert_eq!(walkout::graph::numel(&t.shape), t.numel(), "shape and data disagree");
    let again = npy::parse(&npy::to_bytes(&t), "again.npy").expect("written .npy parses");
    assert_eq!(again.shape, t.shape);
    assert_eq!(again.dtype(), t.dtype());
});
