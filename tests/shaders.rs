#![allow(clippy::unwrap_used)]
//! Every WGSL file in shaders/ parses and validates with naga (CPU only, no adapter needed).

#[test]
fn every_wgsl_file_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "wgsl") {
            continue;
        }
        let src = std::fs::read_to_string(&p).unwrap();
        let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|err| panic!("{}: {}", p.display(), err.emit_to_string(&src)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
            .validate(&module)
            .unwrap_or_else(|err| panic!("{}: {err:?}", p.display()));
        n += 1;
    }
    assert!(n >= 3, "expected the kernel files, found {n}");
}
