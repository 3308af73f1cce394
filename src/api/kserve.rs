//! `inference.GRPCInferenceService`: the KServe v2 / Open Inference Protocol (what Triton
//! speaks), so unmodified `tritonclient[grpc]` clients work.

use super::proto::inference as pb;
use super::proto::inference::grpc_inference_service_server::GrpcInferenceService;
use super::status;
use crate::graph::{DType, Dim, Tensor, TensorData};
use crate::models::Format;
use crate::serve::model::{LoadedModel, ModelState};
use crate::serve::{ServeError, Server};
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[derive(Debug, Clone)]
pub struct KserveApi {
    server: Arc<Server>,
}

impl KserveApi {
    pub fn new(server: Arc<Server>) -> Self {
        KserveApi { server }
    }
}

/// The protocol's datatype name of a dtype.
pub fn datatype(d: DType) -> &'static str {
    match d {
        DType::F32 => "FP32",
        DType::F16 => "FP16",
        DType::I32 => "INT32",
        DType::I64 => "INT64",
        DType::U8 => "UINT8",
        DType::Bool => "BOOL",
    }
}

fn parse_datatype(s: &str) -> Option<DType> {
    Some(match s {
        "FP32" => DType::F32,
        "FP16" => DType::F16,
        "INT32" => DType::I32,
        "INT64" => DType::I64,
        "UINT8" => DType::U8,
        "BOOL" => DType::Bool,
        _ => return None,
    })
}

fn dims_to_wire(dims: &[Dim]) -> Vec<i64> {
    dims.iter()
        .map(|d| match d {
            Dim::Fixed(n) => *n as i64,
            Dim::Dynamic(_) => -1,
        })
        .collect()
}

fn platform(m: &LoadedModel) -> &'static str {
    match m.config.as_ref().map(|c| c.format) {
        Some(Format::Onnx) => "onnx_onnxv1",
        _ => "tensorflowjs_graphdef",
    }
}

fn invalid(name: &str, msg: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("input '{name}': {msg}"))
}

/// Converts one request input into a tensor, checking datatype, shape and byte count.
fn input_tensor(
    m: &LoadedModel,
    max_batch: usize,
    inp: &pb::model_infer_request::InferInputTensor,
    raw: Option<&[u8]>,
) -> Result<(usize, Tensor), Status> {
    let name = inp.name.as_str();
    let idx = m.graph.inputs.iter().position(|i| i.name == name).ok_or_else(|| {
        let names: Vec<&str> = m.graph.inputs.iter().map(|i| i.name.as_str()).collect();
        invalid(name, format!("model '{}' has no such input (inputs: {})", m.name, names.join(", ")))
    })?;
    let info = &m.graph.inputs[idx];
    let dtype = parse_datatype(&inp.datatype).ok_or_else(|| invalid(name, format!("unsupported datatype '{}'", inp.datatype)))?;
    if dtype != info.dtype {
        return Err(invalid(name, format!("datatype {} but the model expects {}", inp.datatype, datatype(info.dtype))));
    }
    if inp.shape.len() != info.dims.len() {
        return Err(invalid(
            name,
            format!("shape {:?} has rank {} but the model expects {:?}", inp.shape, inp.shape.len(), dims_to_wire(&info.dims)),
        ));
    }
    let mut shape = Vec::with_capacity(inp.shape.len());
    for (k, (&s, d)) in inp.shape.iter().zip(&info.dims).enumerate() {
        if !(0..=(1 << 24)).contains(&s) {
            return Err(invalid(name, format!("shape {:?} has an invalid dimension", inp.shape)));
        }
        let s = s as usize;
        let ok = match d {
            Dim::Fixed(n) => *n == s,
            Dim::Dynamic(_) => s > 0 && (k != 0 || s <= max_batch.max(1)),
        };
        if !ok {
            return Err(invalid(
                name,
                format!("shape {:?} does not match the model's {:?} (batch at most {max_batch})", inp.shape, dims_to_wire(&info.dims)),
            ));
        }
        shape.push(s);
    }
    let n = crate::graph::numel(&shape);
    if n.saturating_mul(dtype.size()) > (1 << 30) {
        return Err(invalid(name, "tensor is over 1 GiB"));
    }
    // image models: the sizes they choose at run time (the dynamic dims past the batch) are
    // multiples of the model's stride, and their area is bounded by the model's config
    if let Some(input) = m.config.as_ref().map(|c| &c.input) {
        let free: Vec<usize> =
            shape.iter().zip(&info.dims).skip(1).filter(|(_, d)| matches!(d, Dim::Dynamic(_))).map(|(&s, _)| s).collect();
        if input.multiple_of > 1 {
            if let Some(bad) = free.iter().find(|&&s| s % input.multiple_of != 0) {
                return Err(invalid(name, format!("size {bad} in shape {:?} is not a multiple of {}", inp.shape, input.multiple_of)));
            }
        }
        let area: usize = free.iter().product();
        if free.len() >= 2 && area > input.pixel_limit() {
            return Err(invalid(name, format!("{area} pixels per frame is over the model's limit of {}", input.pixel_limit())));
        }
    }
    let t = match raw {
        Some(bytes) => {
            let need = n * dtype.size();
            if bytes.len() != need {
                return Err(invalid(
                    name,
                    format!("{} bytes of raw content, but shape {:?} of {} needs {need}", bytes.len(), shape, inp.datatype),
                ));
            }
            Tensor::from_le_bytes(dtype, shape, bytes).ok_or_else(|| invalid(name, "raw content does not decode"))?
        }
        None => {
            let c = inp.contents.as_ref().ok_or_else(|| invalid(name, "no contents (give typed contents or raw_input_contents)"))?;
            let count = |len: usize| -> Result<(), Status> {
                if len != n {
                    return Err(invalid(name, format!("{len} values in contents, but shape {shape:?} needs {n}")));
                }
                Ok(())
            };
            let data = match dtype {
                DType::F32 => {
                    count(c.fp32_contents.len())?;
                    TensorData::F32(c.fp32_contents.clone())
                }
                DType::I32 => {
                    count(c.int_contents.len())?;
                    TensorData::I32(c.int_contents.clone())
                }
                DType::I64 => {
                    count(c.int64_contents.len())?;
                    TensorData::I64(c.int64_contents.clone())
                }
                DType::U8 => {
                    count(c.uint_contents.len())?;
                    if c.uint_contents.iter().any(|&v| v > 255) {
                        return Err(invalid(name, "UINT8 contents out of range"));
                    }
                    TensorData::U8(c.uint_contents.iter().map(|&v| v as u8).collect())
                }
                DType::Bool => {
                    count(c.bool_contents.len())?;
                    TensorData::Bool(c.bool_contents.clone())
                }
                DType::F16 => return Err(invalid(name, "FP16 must be sent as raw_input_contents")),
            };
            Tensor::new(shape, data)
        }
    };
    Ok((idx, t))
}

#[tonic::async_trait]
impl GrpcInferenceService for KserveApi {
    async fn server_live(&self, _r: Request<pb::ServerLiveRequest>) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: !self.server.is_draining() }))
    }

    async fn server_ready(&self, _r: Request<pb::ServerReadyRequest>) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse { ready: self.server.is_ready() }))
    }

    async fn model_ready(&self, r: Request<pb::ModelReadyRequest>) -> Result<Response<pb::ModelReadyResponse>, Status> {
        let r = r.into_inner();
        match self.server.model_version(&r.name, &r.version) {
            Ok(_) => Ok(Response::new(pb::ModelReadyResponse { ready: true })),
            // like Triton: unloaded models and versions are "not ready", not an error
            Err(ServeError::Unavailable(_) | ServeError::VersionNotFound { .. } | ServeError::ModelNotFound(_)) => {
                Ok(Response::new(pb::ModelReadyResponse { ready: false }))
            }
            Err(e) => Err(status(e)),
        }
    }

    async fn server_metadata(&self, _r: Request<pb::ServerMetadataRequest>) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(pb::ServerMetadataResponse {
            name: "walkout".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: vec!["model_repository".into(), "statistics".into(), "binary_tensor_data".into(), "walkout_vision".into()],
        }))
    }

    async fn model_metadata(&self, r: Request<pb::ModelMetadataRequest>) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        let r = r.into_inner();
        let (_, m) = self.server.model_version(&r.name, &r.version).map_err(status)?;
        let g = &m.graph;
        let tm = |name: &str, dtype: DType, shape: Vec<i64>| pb::model_metadata_response::TensorMetadata {
            name: name.into(),
            datatype: datatype(dtype).into(),
            shape,
        };
        Ok(Response::new(pb::ModelMetadataResponse {
            name: m.name.clone(),
            versions: vec![m.version.to_string()],
            platform: platform(&m).into(),
            inputs: g.inputs.iter().map(|i| tm(&i.name, i.dtype, dims_to_wire(&i.dims))).collect(),
            outputs: g
                .outputs
                .iter()
                .map(|&o| {
                    let v = &g.values[o];
                    let shape = v.shape.as_ref().map(|s| s.iter().map(|&d| d as i64).collect()).unwrap_or_else(|| vec![-1]);
                    tm(&v.name, v.dtype, shape)
                })
                .collect(),
        }))
    }

    async fn model_infer(&self, r: Request<pb::ModelInferRequest>) -> Result<Response<pb::ModelInferResponse>, Status> {
        let r = r.into_inner();
        let result = self.infer(&r).await;
        let code = match &result {
            Ok(_) => "ok".to_string(),
            Err(s) => format!("{:?}", s.code()),
        };
        if self.server.model(&r.model_name).is_ok() {
            self.server.metrics.requests.with_label_values(&[&r.model_name, "ModelInfer", &code]).inc();
        }
        result.map(Response::new)
    }

    async fn repository_model_load(
        &self,
        r: Request<pb::RepositoryModelLoadRequest>,
    ) -> Result<Response<pb::RepositoryModelLoadResponse>, Status> {
        let r = r.into_inner();
        let name = if r.triton_model_name.is_empty() { r.model_name } else { r.triton_model_name };
        let server = self.server.clone();
        let n = name.clone();
        tokio::task::spawn_blocking(move || server.load_model(&n)).await.map_err(|e| Status::internal(e.to_string()))?.map_err(status)?;
        Ok(Response::new(pb::RepositoryModelLoadResponse { model_name: name, is_loaded: true }))
    }

    async fn repository_model_unload(
        &self,
        r: Request<pb::RepositoryModelUnloadRequest>,
    ) -> Result<Response<pb::RepositoryModelUnloadResponse>, Status> {
        let r = r.into_inner();
        let name = if r.triton_model_name.is_empty() { r.model_name } else { r.triton_model_name };
        let server = self.server.clone();
        let n = name.clone();
        tokio::task::spawn_blocking(move || server.unload_model(&n)).await.map_err(|e| Status::internal(e.to_string()))?.map_err(status)?;
        Ok(Response::new(pb::RepositoryModelUnloadResponse { model_name: name, is_unloaded: true }))
    }

    async fn model_statistics(&self, r: Request<pb::ModelStatisticsRequest>) -> Result<Response<pb::ModelStatisticsResponse>, Status> {
        let r = r.into_inner();
        statistics(&self.server, &r.name, &r.version).map(Response::new)
    }

    async fn repository_index(&self, r: Request<pb::RepositoryIndexRequest>) -> Result<Response<pb::RepositoryIndexResponse>, Status> {
        let r = r.into_inner();
        let entries = self.server.repo.list().map_err(|e| Status::internal(e.to_string()))?;
        let mut models = Vec::new();
        for e in entries {
            let slot = self.server.model(&e.name).ok();
            let (state, version, reason) = match slot.as_ref().map(|s| (s.handle.state(), s.handle.current())) {
                Some((_, Some(m))) => ("READY", m.version.to_string(), String::new()),
                Some((ModelState::Loading, None)) => ("LOADING", String::new(), String::new()),
                Some((ModelState::Unavailable(why), None)) => ("UNAVAILABLE", String::new(), why),
                None if self.server.load_failure(&e.name).is_some() => {
                    ("UNAVAILABLE", String::new(), self.server.load_failure(&e.name).unwrap_or_default())
                }
                Some((ModelState::Ready, None)) | None => {
                    ("UNAVAILABLE", e.versions.last().map(|v| v.to_string()).unwrap_or_default(), "unloaded".to_string())
                }
            };
            if r.ready && state != "READY" {
                continue;
            }
            models.push(pb::repository_index_response::ModelIndex { name: e.name, version, state: state.into(), reason });
        }
        Ok(Response::new(pb::RepositoryIndexResponse { models }))
    }
}

/// The statistics of `name` (all models when empty) and `version` (all when empty) in the
/// protocol's messages. Unknown models and versions are NOT_FOUND.
pub fn statistics(server: &Server, name: &str, version: &str) -> Result<pb::ModelStatisticsResponse, Status> {
    let ver = if version.is_empty() {
        None
    } else {
        Some(version.parse::<u64>().map_err(|_| Status::invalid_argument(format!("version '{version}' is not a number")))?)
    };
    if !name.is_empty() {
        server.model(name).map_err(status)?;
    }
    let d = |t: crate::serve::stats::Tally| Some(pb::StatisticDuration { count: t.count, ns: t.ns });
    let mut model_stats: Vec<pb::ModelStatistics> = server
        .metrics
        .stats
        .snapshot((!name.is_empty()).then_some(name), ver)
        .into_iter()
        .map(|(n, v, s)| pb::ModelStatistics {
            name: n,
            version: v.to_string(),
            last_inference: s.last_inference_ms,
            inference_count: s.inference_count,
            execution_count: s.execution_count,
            inference_stats: Some(pb::InferStatistics {
                success: d(s.success),
                fail: d(s.fail),
                queue: d(s.queue),
                compute_input: d(s.compute_input),
                compute_infer: d(s.compute_infer),
                compute_output: d(s.compute_output),
                cache_hit: d(Default::default()),
                cache_miss: d(Default::default()),
            }),
            batch_stats: s
                .batches
                .iter()
                .map(|(&b, t)| pb::InferBatchStatistics {
                    batch_size: b,
                    compute_input: d(t.compute_input),
                    compute_infer: d(t.compute_infer),
                    compute_output: d(t.compute_output),
                })
                .collect(),
        })
        .collect();
    // a loaded model that has not run yet reports zeros, as Triton does
    if !name.is_empty() && model_stats.is_empty() {
        let (_, m) = server.model_version(name, version).map_err(status)?;
        model_stats.push(pb::ModelStatistics { name: name.into(), version: m.version.to_string(), ..Default::default() });
    }
    Ok(pb::ModelStatisticsResponse { model_stats })
}

impl KserveApi {
    async fn infer(&self, r: &pb::ModelInferRequest) -> Result<pb::ModelInferResponse, Status> {
        let (slot, m) = self.server.model_version(&r.model_name, &r.model_version).map_err(status)?;
        let max_batch = slot.batcher.params().max_batch_size;
        if !r.raw_input_contents.is_empty() && r.raw_input_contents.len() != r.inputs.len() {
            return Err(Status::invalid_argument(format!(
                "{} raw_input_contents for {} inputs",
                r.raw_input_contents.len(),
                r.inputs.len()
            )));
        }
        let mut tensors: Vec<Option<Tensor>> = vec![None; m.graph.inputs.len()];
        for (k, inp) in r.inputs.iter().enumerate() {
            let raw = r.raw_input_contents.get(k).map(|b| b.as_slice());
            let (idx, t) = input_tensor(&m, max_batch, inp, raw)?;
            if tensors[idx].replace(t).is_some() {
                return Err(invalid(&inp.name, "given twice"));
            }
        }
        let mut inputs = Vec::with_capacity(tensors.len());
        for (t, info) in tensors.into_iter().zip(&m.graph.inputs) {
            inputs.push(t.ok_or_else(|| invalid(&info.name, "missing"))?);
        }
        if let Some(b0) = inputs.first().and_then(|t| t.shape.first().copied()) {
            if let Some(bad) = inputs.iter().find(|t| t.shape.first() != Some(&b0)) {
                return Err(Status::invalid_argument(format!("inputs disagree on the batch size ({b0} vs {:?})", bad.shape.first())));
            }
        }
        let out_names: Vec<String> = m.graph.outputs.iter().map(|&o| m.graph.values[o].name.clone()).collect();
        let wanted: Vec<usize> = if r.outputs.is_empty() {
            (0..out_names.len()).collect()
        } else {
            r.outputs
                .iter()
                .map(|o| {
                    out_names.iter().position(|n| *n == o.name).ok_or_else(|| {
                        Status::invalid_argument(format!(
                            "model '{}' has no output '{}' (outputs: {})",
                            m.name,
                            o.name,
                            out_names.join(", ")
                        ))
                    })
                })
                .collect::<Result<_, _>>()?
        };
        let reply = self.server.infer(&r.model_name, &r.model_version, inputs).await.map_err(status)?;
        let mut resp = pb::ModelInferResponse {
            model_name: r.model_name.clone(),
            model_version: reply.version.to_string(),
            id: r.id.clone(),
            ..Default::default()
        };
        for i in wanted {
            let t = reply.outputs.get(i).ok_or_else(|| Status::internal("model returned fewer outputs than it declares"))?;
            resp.outputs.push(pb::model_infer_response::InferOutputTensor {
                name: out_names[i].clone(),
                datatype: datatype(t.dtype()).into(),
                shape: t.shape.iter().map(|&d| d as i64).collect(),
                ..Default::default()
            });
            resp.raw_output_contents.push(t.to_le_bytes());
        }
        Ok(resp)
    }
}
