#![allow(clippy::unwrap_used)]
//! Every WGSL file in shaders/ parses and validates with naga (CPU only, no adapter needed),
//! as it is compiled (with the shared preamble), and every uniform struct the kernels upload
//! has the layout of its WGSL twin.

use walkout::runtime::gpu::kernels::{shader_source, uniform_layouts, PREAMBLE, SHADERS};

fn module(file: &str) -> naga::Module {
    let src = shader_source(file).unwrap_or_else(|| panic!("{file} is not in SHADERS"));
    naga::front::wgsl::parse_str(&src).unwrap_or_else(|err| panic!("{file}: {}", err.emit_to_string(&src)))
}

#[test]
fn every_wgsl_file_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "wgsl") {
            continue;
        }
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        let on_disk = std::fs::read_to_string(&p).unwrap();
        let module = if name == "common.wgsl" {
            assert_eq!(on_disk, PREAMBLE);
            naga::front::wgsl::parse_str(&on_disk).unwrap()
        } else {
            // the compiled source is the file on disk behind the preamble
            assert!(SHADERS.iter().any(|(f, src)| *f == name && *src == on_disk), "{name} is not compiled from SHADERS");
            module(&name)
        };
        // subgroup kernels are compiled only where the adapter offers them
        // and the cooperative-matrix kernels only where it offers those
        let mut caps = naga::valid::Capabilities::empty();
        if on_disk.contains("@builtin(subgroup_id)") {
            caps |= naga::valid::Capabilities::SUBGROUP | naga::valid::Capabilities::SUBGROUP_BARRIER;
        }
        if on_disk.contains("enable wgpu_cooperative_matrix;") {
            caps |= naga::valid::Capabilities::COOPERATIVE_MATRIX | naga::valid::Capabilities::SHADER_FLOAT16;
        }
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all())
            .validate(&module)
            .unwrap_or_else(|err| panic!("{}: {err:?}", p.display()));
        n += 1;
    }
    assert!(n > SHADERS.len(), "expected the kernel files and the preamble, found {n}");
}

#[test]
fn uniform_structs_match_their_wgsl_twins() {
    let layouts = uniform_layouts();
    // every `var<uniform>` struct of every kernel file has a Rust twin
    for (file, _) in SHADERS {
        let m = module(file);
        for (_, var) in m.global_variables.iter() {
            if var.space != naga::AddressSpace::Uniform {
                continue;
            }
            let name = m.types[var.ty].name.clone().unwrap();
            assert!(layouts.iter().any(|l| l.file == file && l.name == name), "{file}: uniform struct {name} has no Rust twin");
        }
    }
    for l in &layouts {
        let m = module(l.file);
        let (_, ty) =
            m.types.iter().find(|(_, t)| t.name.as_deref() == Some(l.name)).unwrap_or_else(|| panic!("{}: no struct {}", l.file, l.name));
        let naga::TypeInner::Struct { members, span } = &ty.inner else { panic!("{} is not a struct", l.name) };
        let wgsl: Vec<(&str, usize)> = members.iter().map(|mb| (mb.name.as_deref().unwrap(), mb.offset as usize)).collect();
        assert_eq!(wgsl, l.fields, "{}: {} fields and offsets differ from the Rust twin", l.file, l.name);
        assert_eq!(*span as usize, l.size, "{}: {} is {} bytes in WGSL, {} in Rust", l.file, l.name, span, l.size);
    }
}
