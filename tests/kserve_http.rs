//! KServe v2 over HTTP/REST and the statistics extension, driven by the clients users test
//! with: curl, the unmodified Triton HTTP client (PyPI tritonclient[http]), and Triton's own
//! load tool, perf_analyzer, over both protocols.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use walkout::app::Running;
use walkout::serve::config::{ModelServeConfig, Secret, ServerConfig};

const MODEL: &str = "movenet-multipose";
const ADMIN: &str = "admin-0123456789abcdef";
const INFER: &str = "infer-0123456789abcdef";

fn config(repo: &Path, tokens: bool) -> ServerConfig {
    ServerConfig {
        grpc_addr: "127.0.0.1:0".into(),
        http_addr: "127.0.0.1:0".into(),
        model_repository: repo.to_path_buf(),
        device: walkout::runtime::Device::Cpu,
        models: vec![ModelServeConfig { name: MODEL.into(), device: None, input_size: None, batching: None }],
        admin_token: tokens.then(|| Secret(ADMIN.into())),
        infer_token: tokens.then(|| Secret(INFER.into())),
        ..ServerConfig::default()
    }
}

fn repo(tag: &str) -> PathBuf {
    common::movenet_repo(&format!("kserve-http-{tag}"))
}

/// Runs a Python tool of the cached perf_analyzer virtualenv (tritonclient[all]).
fn perf_python() -> PathBuf {
    let out = Command::new(common::root().join("scripts/venv-cached"))
        .args(["venv-perf", common::root().join("scripts/triton/requirements-perf.txt").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/venv-cached failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn show(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// curl's body and HTTP status for a request (`-w` appends the code on its own line).
fn curl(args: &[&str]) -> (String, u16) {
    let out = Command::new("curl").args(["-s", "-w", "\n%{http_code}"]).args(args).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_string(), code.trim().parse().unwrap())
}

#[test]
fn curl_speaks_kserve_rest_with_json_and_binary_tensors() {
    let dir = repo("curl");
    let r = Running::start(config(&dir, true)).unwrap();
    let base = format!("http://{}", r.http_addr);
    let infer_auth = format!("Authorization: Bearer {INFER}");
    let get = |path: &str| curl(&["-H", &infer_auth, &format!("{base}{path}")]);
    let post = |path: &str, body: &str, auth: &str| {
        curl(&["-H", auth, "-H", "Content-Type: application/json", "-d", body, &format!("{base}{path}")])
    };

    let (body, code) = get("/v2");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "walkout");
    assert!(v["extensions"].as_array().unwrap().iter().any(|e| e == "statistics"), "{v}");
    let (body, code) = get(&format!("/v2/models/{MODEL}"));
    assert_eq!(code, 200, "{body}");
    let md: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(md["inputs"][0]["datatype"], "INT32");
    assert_eq!(get(&format!("/v2/models/{MODEL}/versions/1/config")).1, 200);
    assert_eq!(get("/v2/models/no-such-model").1, 404);
    // without a token, or with the infer token for an admin action
    assert_eq!(curl(&[&format!("{base}/v2/models/{MODEL}")]).1, 401);
    assert_eq!(post(&format!("/v2/repository/models/{MODEL}/unload"), "{}", &infer_auth).1, 403);
    assert_eq!(get(&format!("/v2/models/{MODEL}/ready")).1, 200);

    // JSON tensors: the reference input as nested arrays, the output as JSON numbers
    let (x, want) = {
        let d = common::fetched("data/reference");
        (walkout::npy::read(&d.join("bus_256x256.input.npy")).unwrap(), walkout::npy::read(&d.join("bus_256x256.output.npy")).unwrap())
    };
    let xs: Vec<i64> = x.to_f64_vec().iter().map(|&v| v as i64).collect();
    let req = serde_json::json!({
        "id": "json-1",
        "inputs": [{ "name": "input", "datatype": "INT32", "shape": x.shape, "data": xs }],
    });
    let tmp = std::env::temp_dir().join(format!("walkout-kserve-http-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("req.json"), req.to_string()).unwrap();
    let (body, code) = post(&format!("/v2/models/{MODEL}/infer"), &format!("@{}", tmp.join("req.json").display()), &infer_auth);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["id"], "json-1");
    let got: Vec<f64> = v["outputs"][0]["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    assert_eq!(v["outputs"][0]["shape"], serde_json::json!([1, 6, 56]));
    let d = got.iter().zip(want.to_f64_vec()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(d < 1e-3, "JSON inference differs from TF.js by {d}");

    // binary tensors (Triton's extension): JSON header, then the raw input; binary output
    let head = serde_json::json!({
        "inputs": [{ "name": "input", "datatype": "INT32", "shape": x.shape, "parameters": { "binary_data_size": xs.len() * 4 } }],
        "outputs": [{ "name": md["outputs"][0]["name"], "parameters": { "binary_data": true } }],
    })
    .to_string();
    let mut raw = head.clone().into_bytes();
    raw.extend(xs.iter().flat_map(|&v| (v as i32).to_le_bytes()));
    std::fs::write(tmp.join("req.bin"), &raw).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-D", tmp.join("headers").to_str().unwrap(), "-H", &infer_auth])
        .args(["-H", &format!("Inference-Header-Content-Length: {}", head.len()), "-H", "Content-Type: application/octet-stream"])
        .args(["--data-binary", &format!("@{}", tmp.join("req.bin").display()), &format!("{base}/v2/models/{MODEL}/infer")])
        .output()
        .unwrap();
    let headers = std::fs::read_to_string(tmp.join("headers")).unwrap().to_ascii_lowercase();
    let n: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("inference-header-content-length:"))
        .unwrap_or_else(|| panic!("no Inference-Header-Content-Length in {headers}"))
        .trim()
        .parse()
        .unwrap();
    let (json_part, bin) = out.stdout.split_at(n);
    let v: serde_json::Value = serde_json::from_slice(json_part).unwrap();
    assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 6 * 56 * 4, "{v}");
    let got: Vec<f32> = bin.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let d = got.iter().zip(want.to_f64_vec()).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max);
    assert!(d < 1e-3, "binary inference differs from TF.js by {d}");

    // bad input: typed 400s that name what is wrong; the server goes on
    let bad = |body: &str| post(&format!("/v2/models/{MODEL}/infer"), body, &infer_auth);
    let (b, c) = bad(r#"{"inputs":[{"name":"input","datatype":"FP32","shape":[1,2,2,3],"data":[1,2,3]}]}"#);
    assert!(c == 400 && b.contains("input 'input'") && b.contains("12"), "{c} {b}");
    let (b, c) = bad(r#"{"inputs":[{"name":"input","datatype":"INT32","shape":[1,16777216,16777216,3],"data":[]}]}"#);
    assert!(c == 400 && b.contains("too large"), "{c} {b}");
    // a shape that claims a billion values with almost no data is refused before anything
    // is sized by it
    let (b, c) = bad(r#"{"inputs":[{"name":"input","datatype":"INT32","shape":[1,16384,16384,3],"data":[1]}]}"#);
    assert!(c == 400 && b.contains("more than the"), "{c} {b}");
    let (b, c) = bad("not json");
    assert!(c == 400 && b.contains("request JSON"), "{c} {b}");
    let (b, c) = bad(r#"{"inputs":[{"name":"nope","datatype":"INT32","shape":[1],"data":[1]}]}"#);
    assert!(c == 400 && b.contains("no such input"), "{c} {b}");

    // statistics count the two inferences
    let (body, code) = get(&format!("/v2/models/{MODEL}/stats"));
    assert_eq!(code, 200, "{body}");
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    let m = &s["model_stats"][0];
    assert_eq!((m["name"].as_str(), m["inference_count"].as_u64()), (Some(MODEL), Some(2)), "{s}");
    assert_eq!(m["inference_stats"]["success"]["count"], 2, "{s}");
    assert!(m["inference_stats"]["fail"]["count"].as_u64().unwrap() == 0, "{s}");
    assert!(m["inference_stats"]["compute_infer"]["ns"].as_u64().unwrap() > 0, "{s}");

    // the admin unloads and loads over REST
    let admin_auth = format!("Authorization: Bearer {ADMIN}");
    assert_eq!(post(&format!("/v2/repository/models/{MODEL}/unload"), "{}", &admin_auth).1, 200);
    assert_eq!(get(&format!("/v2/models/{MODEL}/ready")).1, 404);
    assert_eq!(post(&format!("/v2/repository/models/{MODEL}/load"), "{}", &admin_auth).1, 200);
    assert_eq!(get(&format!("/v2/models/{MODEL}/ready")).1, 200);
    let (body, _) = post("/v2/repository/index", "{}", &infer_auth);
    assert!(body.contains("\"READY\""), "{body}");
    drop(r);
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unmodified_tritonclient_http_and_statistics_work() {
    let dir = repo("tritonclient");
    let r = Running::start(config(&dir, false)).unwrap();
    let out = Command::new(perf_python())
        .arg(common::root().join("scripts/triton/check_http.py"))
        .args(["--http", &r.http_addr.to_string(), "--grpc", &r.grpc_addr.to_string()])
        .args(["--reference", common::fetched("data/reference").to_str().unwrap()])
        .output()
        .unwrap();
    println!("{}", show(&out));
    assert!(out.status.success(), "tritonclient.http check failed:\n{}", show(&out));
    drop(r);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn perf_analyzer_shows_the_server_side_over_http_and_grpc() {
    let dir = repo("perf");
    let r = Running::start(config(&dir, false)).unwrap();
    let out = Command::new("python3")
        .arg(common::root().join("scripts/triton/perf_check.py"))
        .args([&r.http_addr.to_string(), &r.grpc_addr.to_string()])
        .env("WALKOUT_PERF_INTERVAL_MS", "2000")
        .output()
        .unwrap();
    println!("{}", show(&out));
    assert!(out.status.success(), "perf_analyzer check failed:\n{}", show(&out));
    drop(r);
    let _ = std::fs::remove_dir_all(&dir);
}
