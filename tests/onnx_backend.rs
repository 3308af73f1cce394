#![allow(clippy::unwrap_used)]
//! The ONNX project's own model tests, as shipped in the PyPI wheel `onnx` 1.23.2
//! (`onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}`, fetched by
//! scripts/fetch-data into data/onnx-backend/): every model, unmodified (opsets 6 to 21), on
//! each executor, against the expected outputs with the ONNX backend's tolerances (rtol 1e-3,
//! atol 1e-7, or the case's `data.json`).
//!
//! A case that cannot pass is listed with its reason in `tests/onnx_backend_exclusions.txt`;
//! every other case must pass, and every listed case must still fail (so the list stays
//! true). `onnxruntime_passes_no_case_walkout_fails` runs onnxruntime on the same files.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use walkout::graph::{onnx, DType, Tensor};
use walkout::runtime::Executor;

const FOLDERS: [&str; 3] = ["pytorch-converted", "pytorch-operator", "simple"];

fn cases() -> Vec<(String, PathBuf)> {
    let root = common::fetched("data/onnx-backend");
    let mut v = Vec::new();
    for f in FOLDERS {
        let mut dirs: Vec<PathBuf> =
            std::fs::read_dir(root.join(f)).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("model.onnx").is_file()).collect();
        dirs.sort();
        v.extend(dirs.into_iter().map(|d| (f.to_string(), d)));
    }
    v
}

/// `name -> reason` from the exclusions list.
fn exclusions() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(common::root().join("tests/onnx_backend_exclusions.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, why) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (name.to_string(), why.trim().to_string())
        })
        .collect()
}

/// numpy's `assert_allclose`: |got - want| <= atol + rtol * |want|, NaN equal to NaN.
fn compare(got: &Tensor, want: &Tensor, atol: f64, rtol: f64) -> Result<(), String> {
    if got.shape != want.shape {
        return Err(format!("shape {:?}, expected {:?}", got.shape, want.shape));
    }
    let exact = !want.dtype().is_float();
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        let bad = if a.is_nan() || b.is_nan() {
            a.is_nan() != b.is_nan()
        } else if exact {
            a != b
        } else {
            (a - b).abs() > atol + rtol * b.abs()
        };
        if bad {
            return Err(format!("element {i}: {a} vs {b}"));
        }
    }
    Ok(())
}

fn tolerances(dir: &Path) -> (f64, f64) {
    let (mut atol, mut rtol) = (1e-7, 1e-3);
    if let Ok(text) = std::fs::read_to_string(dir.join("data.json")) {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        atol = v["atol"].as_f64().unwrap_or(atol);
        rtol = v["rtol"].as_f64().unwrap_or(rtol);
    }
    (atol, rtol)
}

fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let i = name.strip_prefix(prefix)?.strip_suffix(".pb")?.parse().ok()?;
            Some((i, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// Runs every test data set of one case; returns the nodes the plan ran on the host, where
/// the executor reports them (the GPU executor's CPU tail).
fn run_case(dir: &Path, exec: &dyn Executor) -> Result<Vec<String>, String> {
    let (atol, rtol) = tolerances(dir);
    let g = onnx::load(&dir.join("model.onnx")).map_err(|e| format!("import: {e}"))?;
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.file_name().unwrap().to_string_lossy().starts_with("test_data_set"))
        .collect();
    sets.sort();
    if sets.is_empty() {
        return Err("no test data sets".into());
    }
    let mut host = Vec::new();
    for set in sets {
        let inputs: Vec<Tensor> =
            numbered(&set, "input_").iter().map(|p| onnx::read_tensor(p)).collect::<Result<_, _>>().map_err(|e| format!("input: {e}"))?;
        let wants: Vec<Tensor> = numbered(&set, "output_")
            .iter()
            .map(|p| onnx::read_tensor(p))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("expected output: {e}"))?;
        let inputs: Vec<Tensor> = inputs
            .into_iter()
            .zip(&g.inputs)
            .map(|(t, info)| if t.dtype() != info.dtype && t.dtype() == DType::F32 { t.cast(info.dtype) } else { t })
            .collect();
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape.clone()).collect();
        let mut plan = exec.compile(&g, &shapes).map_err(|e| format!("compile: {e}"))?;
        let outs = plan.run(&inputs).map_err(|e| format!("run: {e}"))?;
        if let Ok(Some(p)) = plan.profile(&inputs) {
            host.extend(p.untimed);
        }
        if outs.len() != wants.len() {
            return Err(format!("{} outputs, expected {}", outs.len(), wants.len()));
        }
        for (i, (o, w)) in outs.iter().zip(&wants).enumerate() {
            compare(o, w, atol, rtol).map_err(|e| format!("output {i}: {e}"))?;
        }
    }
    host.sort();
    host.dedup();
    Ok(host)
}

fn every_model_test_passes_but_the_listed(exec: &dyn Executor) {
    let cases = cases();
    assert_eq!(cases.len(), 140, "expected the 82 + 35 + 23 model tests of onnx 1.23.2");
    let excluded = exclusions();
    let mut wrong = Vec::new();
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (folder, dir) in &cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let r = run_case(dir, exec);
        let c = counts.entry(folder.as_str()).or_default();
        c.1 += 1;
        match (&r, excluded.get(&name)) {
            (Ok(host), None) => {
                c.0 += 1;
                if host.is_empty() {
                    println!("{folder}/{name:<48} ok");
                } else {
                    println!("{folder}/{name:<48} ok, on the host: {}", host.join(", "));
                }
            }
            (Err(e), Some(why)) => println!("{folder}/{name:<48} excluded ({why}): {e}"),
            (Err(e), None) => {
                println!("{folder}/{name:<48} FAIL {e}");
                wrong.push(format!("{name}: {e}"));
            }
            (Ok(_), Some(_)) => {
                c.0 += 1;
                println!("{folder}/{name:<48} ok, but listed as excluded");
                wrong.push(format!("{name} passes: remove it from tests/onnx_backend_exclusions.txt"));
            }
        }
    }
    for (f, (pass, n)) in &counts {
        println!("{}: {f}: {pass} of {n} pass", exec.name());
    }
    assert!(wrong.is_empty(), "{} cases disagree with the exclusions list:\n{}", wrong.len(), wrong.join("\n"));
}

test_executors!(every_model_test_passes_but_the_listed_on, super::every_model_test_passes_but_the_listed);

/// onnxruntime (PyPI) on the same files, as shipped: every case it passes, walkout passes
/// too (the test above holds every case outside the exclusions list to that), unless walkout
/// deliberately does not carry the case's data type (`type:` in the list).
#[test]
fn onnxruntime_passes_no_case_walkout_fails() {
    let script = common::root().join("scripts/onnx-backend/ort.py");
    let out = std::process::Command::new(common::python()).arg(&script).arg(common::fetched("data/onnx-backend")).output().unwrap();
    assert!(out.status.success(), "ort.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let excluded = exclusions();
    let mut ort: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut ours: BTreeMap<&str, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for line in text.lines() {
        let (case, verdict) = line.split_once(' ').unwrap();
        let (folder, name) = case.split_once('/').unwrap();
        let passes = verdict == "ok";
        let c = ort.entry(folder).or_default();
        c.1 += 1;
        c.0 += passes as usize;
        let why = excluded.get(name);
        *ours.entry(folder).or_default() += why.is_none() as usize;
        if passes && why.is_some_and(|w| !w.starts_with("type:")) {
            wrong.push(format!("{case}: onnxruntime passes it, walkout lists it as '{}'", why.unwrap()));
        }
    }
    for (f, (pass, n)) in &ort {
        println!("{f}: onnxruntime passes {pass} of {n}; walkout {} of {n}", ours[f]);
    }
    assert_eq!(ort.values().map(|c| c.1).sum::<usize>(), 140, "ort.py ran {} cases", ort.values().map(|c| c.1).sum::<usize>());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `walkout models run` on a model that fixes batch 2 ([2,3,7,5]) runs it as declared, with
/// the test's own TensorProto input, and writes what the ONNX test expects.
#[test]
fn models_run_keeps_a_fixed_batch_of_two() {
    let case = common::fetched("data/onnx-backend/pytorch-converted/test_Conv2d");
    let set = case.join("test_data_set_0");
    let out = std::env::temp_dir().join(format!("walkout-batch2-{}.npy", std::process::id()));
    let r = std::process::Command::new(env!("CARGO_BIN_EXE_walkout"))
        .args(["models", "run", "--device", "cpu"])
        .arg(case.join("model.onnx"))
        .arg("--input")
        .arg(set.join("input_0.pb"))
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let got = walkout::npy::read(&out).unwrap();
    let want = onnx::read_tensor(&set.join("output_0.pb")).unwrap();
    assert_eq!(got.shape[0], 2);
    compare(&got, &want, 1e-7, 1e-3).unwrap();
    let _ = std::fs::remove_file(out);
}
