//! KServe v2 over HTTP/REST (the Open Inference Protocol's REST binding, as Triton serves it):
//! server and model metadata, model config, inference with JSON tensors and Triton's binary
//! tensor extension, statistics, and the repository extension. Each endpoint goes through
//! the same handlers as the gRPC service, so both protocols check, limit, count and answer
//! alike; errors are `{"error": "..."}` with the HTTP status of the gRPC code.

use super::kserve::{self, KserveApi};
use super::proto::inference as pb;
use super::proto::inference::grpc_inference_service_server::GrpcInferenceService;
use crate::serve::Server;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tonic::{Code, Request, Status};

/// Triton's header giving the length of the JSON part of a body with binary tensors.
const HEADER_LEN: &str = "inference-header-content-length";

fn error(s: Status) -> Response {
    let code = match s.code() {
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Internal | Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    (code, [(header::CONTENT_TYPE, "application/json")], json!({ "error": s.message() }).to_string()).into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    error(Status::invalid_argument(msg.into()))
}

fn ok_json(v: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

async fn server_metadata(State(s): State<Arc<Server>>) -> Response {
    match KserveApi::new(s).server_metadata(Request::new(pb::ServerMetadataRequest {})).await {
        Ok(r) => {
            let r = r.into_inner();
            ok_json(json!({ "name": r.name, "version": r.version, "extensions": r.extensions }))
        }
        Err(e) => error(e),
    }
}

async fn metadata(s: Arc<Server>, name: String, version: String) -> Response {
    match KserveApi::new(s).model_metadata(Request::new(pb::ModelMetadataRequest { name, version })).await {
        Ok(r) => {
            let r = r.into_inner();
            let t = |v: &[pb::model_metadata_response::TensorMetadata]| -> Vec<Value> {
                v.iter().map(|t| json!({ "name": t.name, "datatype": t.datatype, "shape": t.shape })).collect()
            };
            ok_json(json!({
                "name": r.name, "versions": r.versions, "platform": r.platform,
                "inputs": t(&r.inputs), "outputs": t(&r.outputs),
            }))
        }
        Err(e) => error(e),
    }
}

async fn model_metadata(State(s): State<Arc<Server>>, Path(name): Path<String>) -> Response {
    metadata(s, name, String::new()).await
}

async fn model_version_metadata(State(s): State<Arc<Server>>, Path((name, version)): Path<(String, String)>) -> Response {
    metadata(s, name, version).await
}

/// The model's configuration as Triton writes it (what perf_analyzer and clients read):
/// no server-side batch dimension (`max_batch_size` 0), full shapes with -1 for dynamic
/// dimensions, Triton's `TYPE_*` names.
async fn config(s: Arc<Server>, name: String, version: String) -> Response {
    let (slot, m) = match s.model_version(&name, &version) {
        Ok(v) => v,
        Err(e) => return error(super::status(e)),
    };
    let ty = |d| format!("TYPE_{}", kserve::datatype(d));
    let g = &m.graph;
    let inputs: Vec<Value> = g
        .inputs
        .iter()
        .map(|i| {
            let dims: Vec<i64> = i
                .dims
                .iter()
                .map(|d| match d {
                    crate::graph::Dim::Fixed(n) => *n as i64,
                    crate::graph::Dim::Dynamic(_) => -1,
                })
                .collect();
            json!({ "name": i.name, "data_type": ty(i.dtype), "dims": dims })
        })
        .collect();
    let outputs: Vec<Value> = g
        .outputs
        .iter()
        .map(|&o| {
            let v = &g.values[o];
            let dims: Vec<i64> = v.shape.as_ref().map(|s| s.iter().map(|&d| d as i64).collect()).unwrap_or_else(|| vec![-1]);
            json!({ "name": v.name, "data_type": ty(v.dtype), "dims": dims })
        })
        .collect();
    let platform = match m.config.as_ref().map(|c| c.format) {
        Some(crate::models::Format::Onnx) => "onnxruntime_onnx",
        _ => "tensorflowjs_graphdef",
    };
    let batching = slot.batcher.params();
    ok_json(json!({
        "name": m.name, "platform": platform, "backend": "walkout", "max_batch_size": 0,
        "version_policy": { "specific": { "versions": [m.version] } },
        "input": inputs, "output": outputs,
        "dynamic_batching": { "max_queue_delay_microseconds": batching.max_queue_delay_us, "preferred_batch_size": batching.preferred_batch_sizes },
        "instance_group": [{ "count": 1, "kind": "KIND_AUTO" }],
    }))
}

async fn model_config(State(s): State<Arc<Server>>, Path(name): Path<String>) -> Response {
    config(s, name, String::new()).await
}

async fn model_version_config(State(s): State<Arc<Server>>, Path((name, version)): Path<(String, String)>) -> Response {
    config(s, name, version).await
}

fn stats_json(s: &Server, name: &str, version: &str) -> Response {
    let r = match kserve::statistics(s, name, version) {
        Ok(r) => r,
        Err(e) => return error(e),
    };
    let d = |t: Option<pb::StatisticDuration>| {
        let t = t.unwrap_or_default();
        json!({ "count": t.count, "ns": t.ns })
    };
    let stats: Vec<Value> = r
        .model_stats
        .iter()
        .map(|m| {
            let i = m.inference_stats.unwrap_or_default();
            json!({
                "name": m.name, "version": m.version, "last_inference": m.last_inference,
                "inference_count": m.inference_count, "execution_count": m.execution_count,
                "inference_stats": {
                    "success": d(i.success), "fail": d(i.fail), "queue": d(i.queue),
                    "compute_input": d(i.compute_input), "compute_infer": d(i.compute_infer),
                    "compute_output": d(i.compute_output), "cache_hit": d(i.cache_hit), "cache_miss": d(i.cache_miss),
                },
                "batch_stats": m.batch_stats.iter().map(|b| json!({
                    "batch_size": b.batch_size, "compute_input": d(b.compute_input),
                    "compute_infer": d(b.compute_infer), "compute_output": d(b.compute_output),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    ok_json(json!({ "model_stats": stats }))
}

async fn all_stats(State(s): State<Arc<Server>>) -> Response {
    stats_json(&s, "", "")
}

async fn model_stats(State(s): State<Arc<Server>>, Path(name): Path<String>) -> Response {
    stats_json(&s, &name, "")
}

async fn model_version_stats(State(s): State<Arc<Server>>, Path((name, version)): Path<(String, String)>) -> Response {
    stats_json(&s, &name, &version)
}

/// Bytes per element of a protocol datatype (BOOL is one byte on the wire).
fn elem_size(datatype: &str) -> Option<usize> {
    Some(match datatype {
        "FP32" | "INT32" => 4,
        "INT64" => 8,
        "FP16" => 2,
        "UINT8" | "BOOL" => 1,
        _ => return None,
    })
}

/// Flattens JSON `data` (flat or nested as the shape) into little-endian bytes.
fn json_to_raw(name: &str, datatype: &str, data: &Value, count: usize, body_len: usize) -> Result<Vec<u8>, String> {
    // each JSON value takes at least two bytes of the (bounded) body: a shape that claims
    // more is refused before anything is sized by it
    if count > body_len / 2 + 1 {
        return Err(format!("input '{name}': the shape claims {count} values, more than the {body_len}-byte request holds"));
    }
    let mut flat = Vec::with_capacity(count);
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>, limit: usize) -> Result<(), String> {
        match v {
            Value::Array(a) => a.iter().try_for_each(|x| walk(x, out, limit)),
            x if out.len() < limit => {
                out.push(x);
                Ok(())
            }
            _ => Err("more values than the shape holds".into()),
        }
    }
    walk(data, &mut flat, count).map_err(|e| format!("input '{name}': {e}"))?;
    if flat.len() != count {
        return Err(format!("input '{name}': {} values in data, but the shape needs {count}", flat.len()));
    }
    let mut out = Vec::with_capacity(count * elem_size(datatype).unwrap_or(4));
    let wrong = |v: &Value| format!("input '{name}': {v} is not a {datatype} value");
    for v in flat {
        match datatype {
            "FP32" => out.extend((v.as_f64().ok_or_else(|| wrong(v))? as f32).to_le_bytes()),
            "INT32" => out.extend(i32::try_from(v.as_i64().ok_or_else(|| wrong(v))?).map_err(|_| wrong(v))?.to_le_bytes()),
            "INT64" => out.extend(v.as_i64().ok_or_else(|| wrong(v))?.to_le_bytes()),
            "UINT8" => out.push(u8::try_from(v.as_u64().ok_or_else(|| wrong(v))?).map_err(|_| wrong(v))?),
            "BOOL" => out.push(v.as_bool().ok_or_else(|| wrong(v))? as u8),
            _ => return Err(format!("input '{name}': {datatype} must be sent as binary data")),
        }
    }
    Ok(out)
}

/// Little-endian bytes of an output as JSON numbers.
fn raw_to_json(datatype: &str, raw: &[u8]) -> Value {
    let v: Vec<Value> = match datatype {
        "FP32" => raw.chunks_exact(4).map(|c| json!(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        "FP16" => raw.chunks_exact(2).map(|c| json!(half::f16::from_le_bytes([c[0], c[1]]).to_f32())).collect(),
        "INT32" => raw.chunks_exact(4).map(|c| json!(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        "INT64" => raw.chunks_exact(8).map(|c| json!(i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))).collect(),
        "UINT8" => raw.iter().map(|&b| json!(b)).collect(),
        "BOOL" => raw.iter().map(|&b| json!(b != 0)).collect(),
        _ => Vec::new(),
    };
    Value::Array(v)
}

fn param_bool(p: Option<&Value>, key: &str) -> bool {
    p.and_then(|p| p.get(key)).and_then(Value::as_bool).unwrap_or(false)
}

/// Parses an infer request body (JSON, or JSON then binary tensors) into the gRPC request.
/// Returns it with the outputs wanted in binary.
fn parse_infer(
    name: String,
    version: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(pb::ModelInferRequest, Vec<bool>, bool), String> {
    let json_len = match headers.get(HEADER_LEN) {
        Some(v) => {
            let n: usize = v.to_str().ok().and_then(|s| s.trim().parse().ok()).ok_or("invalid Inference-Header-Content-Length")?;
            if n > body.len() {
                return Err(format!("Inference-Header-Content-Length {n} is over the body's {} bytes", body.len()));
            }
            n
        }
        None => body.len(),
    };
    let (head, mut binary) = body.split_at(json_len);
    let req: Value = serde_json::from_slice(head).map_err(|e| format!("request JSON: {e}"))?;
    let obj = req.as_object().ok_or("the request must be a JSON object")?;
    let inputs = obj.get("inputs").and_then(Value::as_array).ok_or("the request has no 'inputs' array")?;
    let mut r = pb::ModelInferRequest {
        model_name: name,
        model_version: version,
        id: obj.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
        ..Default::default()
    };
    for (k, inp) in inputs.iter().enumerate() {
        let name = inp.get("name").and_then(Value::as_str).ok_or(format!("input {k} has no name"))?.to_string();
        let datatype = inp.get("datatype").and_then(Value::as_str).ok_or(format!("input '{name}' has no datatype"))?.to_string();
        let shape: Vec<i64> = inp
            .get("shape")
            .and_then(Value::as_array)
            .ok_or(format!("input '{name}' has no shape"))?
            .iter()
            .map(|d| d.as_i64().filter(|&d| (0..=1 << 24).contains(&d)).ok_or(format!("input '{name}': bad dimension {d}")))
            .collect::<Result<_, _>>()?;
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d as usize)).filter(|&n| n <= 1 << 30);
        let count = count.ok_or(format!("input '{name}': shape {shape:?} is too large"))?;
        let size = elem_size(&datatype).ok_or(format!("input '{name}': unsupported datatype '{datatype}'"))?;
        let raw = match inp.get("parameters").and_then(|p| p.get("binary_data_size")) {
            Some(n) => {
                let n = n.as_u64().ok_or(format!("input '{name}': binary_data_size must be a number"))? as usize;
                if n > binary.len() {
                    return Err(format!("input '{name}': binary_data_size {n} is over the {} bytes left in the body", binary.len()));
                }
                if n != count * size {
                    return Err(format!(
                        "input '{name}': {n} bytes of binary data, but shape {shape:?} of {datatype} needs {}",
                        count * size
                    ));
                }
                let (chunk, rest) = binary.split_at(n);
                binary = rest;
                chunk.to_vec()
            }
            None => json_to_raw(&name, &datatype, inp.get("data").ok_or(format!("input '{name}' has no data"))?, count, head.len())?,
        };
        r.inputs.push(pb::model_infer_request::InferInputTensor { name, datatype, shape, ..Default::default() });
        r.raw_input_contents.push(raw);
    }
    if !binary.is_empty() {
        return Err(format!("{} bytes of binary data are not claimed by any input", binary.len()));
    }
    let all_binary = param_bool(obj.get("parameters"), "binary_data_output");
    let mut binary_out = Vec::new();
    for o in obj.get("outputs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let name = o.get("name").and_then(Value::as_str).ok_or("an output has no name")?.to_string();
        binary_out.push(all_binary || param_bool(o.get("parameters"), "binary_data"));
        r.outputs.push(pb::model_infer_request::InferRequestedOutputTensor { name, ..Default::default() });
    }
    Ok((r, binary_out, all_binary))
}

async fn infer_at(s: Arc<Server>, name: String, version: String, headers: HeaderMap, body: Bytes) -> Response {
    let (req, binary_out, all_binary) = match parse_infer(name, version, &headers, &body) {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    drop(body);
    let resp = match KserveApi::new(s).model_infer(Request::new(req)).await {
        Ok(r) => r.into_inner(),
        Err(e) => return error(e),
    };
    let mut outputs = Vec::with_capacity(resp.outputs.len());
    let mut tail: Vec<u8> = Vec::new();
    for (k, (o, raw)) in resp.outputs.iter().zip(&resp.raw_output_contents).enumerate() {
        let mut t = Map::new();
        t.insert("name".into(), json!(o.name));
        t.insert("datatype".into(), json!(o.datatype));
        t.insert("shape".into(), json!(o.shape));
        if binary_out.get(k).copied().unwrap_or(all_binary) {
            t.insert("parameters".into(), json!({ "binary_data_size": raw.len() }));
            tail.extend_from_slice(raw);
        } else {
            t.insert("data".into(), raw_to_json(&o.datatype, raw));
        }
        outputs.push(Value::Object(t));
    }
    let mut head = json!({ "model_name": resp.model_name, "model_version": resp.model_version, "outputs": outputs });
    if !resp.id.is_empty() {
        head["id"] = json!(resp.id);
    }
    let head = serde_json::to_vec(&head).unwrap_or_default();
    if tail.is_empty() {
        return ([(header::CONTENT_TYPE, "application/json")], head).into_response();
    }
    let len = HeaderValue::from(head.len());
    let mut body = head;
    body.extend_from_slice(&tail);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")), (header::HeaderName::from_static(HEADER_LEN), len)],
        body,
    )
        .into_response()
}

async fn infer(State(s): State<Arc<Server>>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    infer_at(s, name, String::new(), headers, body).await
}

async fn infer_version(
    State(s): State<Arc<Server>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    infer_at(s, name, version, headers, body).await
}

async fn repository_index(State(s): State<Arc<Server>>, body: Bytes) -> Response {
    let ready = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("ready").and_then(Value::as_bool)).unwrap_or(false);
    match KserveApi::new(s).repository_index(Request::new(pb::RepositoryIndexRequest { ready, ..Default::default() })).await {
        Ok(r) => {
            let v: Vec<Value> = r
                .into_inner()
                .models
                .iter()
                .map(|m| {
                    let mut e = json!({ "name": m.name, "version": m.version, "state": m.state });
                    if !m.reason.is_empty() {
                        e["reason"] = json!(m.reason);
                    }
                    e
                })
                .collect();
            ok_json(Value::Array(v))
        }
        Err(e) => error(e),
    }
}

async fn repository_load(State(s): State<Arc<Server>>, Path(name): Path<String>) -> Response {
    let req = pb::RepositoryModelLoadRequest { model_name: name, triton_model_name: String::new() };
    match KserveApi::new(s).repository_model_load(Request::new(req)).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => error(e),
    }
}

async fn repository_unload(State(s): State<Arc<Server>>, Path(name): Path<String>) -> Response {
    let req = pb::RepositoryModelUnloadRequest { model_name: name, triton_model_name: String::new() };
    match KserveApi::new(s).repository_model_unload(Request::new(req)).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => error(e),
    }
}

/// The KServe v2 REST routes. `max_body` bounds a request body, as the gRPC message limit
/// bounds a message.
pub fn routes(max_body: usize) -> Router<Arc<Server>> {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/models/stats", get(all_stats))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_version_metadata))
        .route("/v2/models/{name}/config", get(model_config))
        .route("/v2/models/{name}/versions/{version}/config", get(model_version_config))
        .route("/v2/models/{name}/stats", get(model_stats))
        .route("/v2/models/{name}/versions/{version}/stats", get(model_version_stats))
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_version))
        .route("/v2/repository/index", post(repository_index))
        .route("/v2/repository/models/{name}/load", post(repository_load))
        .route("/v2/repository/models/{name}/unload", post(repository_unload))
        .layer(DefaultBodyLimit::max(max_body))
}
