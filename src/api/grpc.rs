//! `walkout.v1.Vision` and the gRPC server (with KServe v2, health and reflection) on one port.

use super::proto::walkout as pb;
use super::proto::walkout::vision_server::{Vision, VisionServer};
use super::status;
use crate::events::{GateScan, ShelfReading};
use crate::models::heads::{Person, KEYPOINT_NAMES};
use crate::serve::batcher::PushOutcome;
use crate::serve::config::CameraConfig;
use crate::serve::{FrameResult, Identity, ServeError, Server};
use crate::sources::CameraFrame;
use crate::vision::image_io;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

/// Most per-frame errors listed in one PushFrames response.
const MAX_LISTED_ERRORS: usize = 100;

#[derive(Debug, Clone)]
pub struct VisionApi {
    server: Arc<Server>,
    /// Bounds the images being decoded at once across all connections, so decoded pixels
    /// (up to `max_frame_side`^2 x 3 bytes each) cannot pile up without limit.
    decoders: Arc<tokio::sync::Semaphore>,
}

impl VisionApi {
    pub fn new(server: Arc<Server>) -> Self {
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) * 2;
        VisionApi { server, decoders: Arc::new(tokio::sync::Semaphore::new(n.max(4))) }
    }

    /// Decodes on the blocking pool, waiting for a decoder slot first.
    async fn decode(
        &self,
        encoded: Option<Vec<u8>>,
        raw: Option<pb::RawImage>,
        what: String,
    ) -> Result<Result<image::RgbImage, ServeError>, Status> {
        let _permit = self.decoders.clone().acquire_owned().await.map_err(|_| Status::unavailable("server is shutting down"))?;
        let server = self.server.clone();
        tokio::task::spawn_blocking(move || image_from_wire(&server, encoded, raw, &what))
            .await
            .map_err(|e| Status::internal(format!("decoder task: {e}")))
    }
}

pub fn person_to_wire(p: &Person, id: Option<&Identity>) -> pb::Person {
    pb::Person {
        track_id: id.and_then(|i| i.track).unwrap_or(0),
        global_id: id.and_then(|i| i.global).unwrap_or(0),
        session: id.and_then(|i| i.session.clone()).unwrap_or_default(),
        score: p.score,
        x0: p.bbox[0],
        y0: p.bbox[1],
        x1: p.bbox[2],
        y1: p.bbox[3],
        keypoints: p
            .keypoints
            .iter()
            .enumerate()
            .map(|(i, k)| pb::Keypoint { name: KEYPOINT_NAMES.get(i).copied().unwrap_or("").to_string(), x: k.x, y: k.y, score: k.score })
            .collect(),
    }
}

fn result_to_wire(r: &FrameResult, skipped: u64) -> pb::FrameResult {
    pb::FrameResult {
        camera_id: r.camera.clone(),
        seq: r.seq,
        capture_ts: r.capture_ts,
        model: r.model.clone(),
        model_version: r.version.to_string(),
        width: r.width,
        height: r.height,
        persons: r.persons().iter().enumerate().map(|(i, p)| person_to_wire(p, r.identities.get(i))).collect(),
        queue_ms: r.queue_s * 1e3,
        compute_ms: r.compute_s * 1e3,
        e2e_ms: r.e2e_s * 1e3,
        batch_size: r.batch_size as u32,
        skipped,
    }
}

fn camera_from_wire(s: pb::CameraSpec) -> CameraConfig {
    CameraConfig {
        id: s.id,
        source: s.source,
        url: s.url,
        fps: s.fps,
        r#loop: s.r#loop,
        model: s.model,
        queue_size: s.queue_size as usize,
        width: s.width,
        height: s.height,
        // a calibration is a server-side file: clients do not name paths
        calibration: None,
    }
}

fn camera_to_wire(i: crate::serve::camera::CameraInfo) -> pb::Camera {
    let c = i.config;
    pb::Camera {
        spec: Some(pb::CameraSpec {
            id: c.id,
            source: c.source,
            url: c.url,
            fps: c.fps,
            r#loop: c.r#loop,
            model: c.model,
            queue_size: c.queue_size as u32,
            width: c.width,
            height: c.height,
        }),
        connected: i.connected,
        frames_in: i.frames_in,
        frames_dropped: i.frames_dropped,
        frames_done: i.frames_done,
        reconnects: i.reconnects,
        last_error: i.last_error,
    }
}

/// Decodes an encoded or raw image under the server's size limits; the side limit is checked
/// from the header before any pixel is decoded.
pub fn image_from_wire(
    server: &Server,
    encoded: Option<Vec<u8>>,
    raw: Option<pb::RawImage>,
    what: &str,
) -> Result<image::RgbImage, ServeError> {
    let max_bytes = server.config.max_frame_bytes;
    let max_side = server.config.max_frame_side;
    match (encoded, raw) {
        (Some(bytes), _) => {
            if bytes.len() > max_bytes {
                return Err(ServeError::InvalidArgument(format!("{what}: {} bytes is over the {max_bytes}-byte frame limit", bytes.len())));
            }
            image_io::decode_limited(&bytes, what, max_side).map_err(|e| ServeError::InvalidArgument(e.to_string()))
        }
        (None, Some(r)) => {
            if r.width == 0 || r.height == 0 || r.width > max_side || r.height > max_side {
                return Err(ServeError::InvalidArgument(format!("{what}: raw image {}x{} (each side 1 to {max_side})", r.width, r.height)));
            }
            let need = r.width as usize * r.height as usize * 3;
            if r.rgb.len() != need {
                return Err(ServeError::InvalidArgument(format!(
                    "{what}: raw image {}x{} needs {need} RGB bytes, got {}",
                    r.width,
                    r.height,
                    r.rgb.len()
                )));
            }
            image::RgbImage::from_raw(r.width, r.height, r.rgb).ok_or_else(|| ServeError::Internal("raw image buffer".into()))
        }
        (None, None) => Err(ServeError::InvalidArgument(format!("{what}: no image (set encoded or raw)"))),
    }
}

type ResultStream = Pin<Box<dyn Stream<Item = Result<pb::FrameResult, Status>> + Send>>;

#[tonic::async_trait]
impl Vision for VisionApi {
    async fn push_frames(&self, req: Request<Streaming<pb::Frame>>) -> Result<Response<pb::PushFramesResponse>, Status> {
        let mut stream = req.into_inner();
        let mut resp = pb::PushFramesResponse::default();
        let mut shutdown = self.server.shutdown_signal();
        loop {
            // a draining server ends the stream with its summary instead of waiting for the
            // client to close it
            let next = tokio::select! {
                m = stream.message() => m?,
                _ = shutdown.wait_for(|&draining| draining) => None,
            };
            let Some(msg) = next else { break };
            let arrived = Instant::now();
            let (camera, seq) = (msg.camera_id.clone(), msg.seq);
            let mut reject = |code: tonic::Code, reason: &str, message: String| {
                self.server.reject_frame(&camera, reason);
                resp.rejected += 1;
                if resp.errors.len() < MAX_LISTED_ERRORS {
                    resp.errors.push(pb::FrameError { camera_id: camera.clone(), seq, code: code as i32, message });
                }
            };
            if let Err(e) = crate::serve::guard::check_camera_id(&camera) {
                reject(tonic::Code::InvalidArgument, "invalid", e.to_string());
                continue;
            }
            let (encoded, raw) = match msg.image {
                Some(pb::frame::Image::Encoded(b)) => (Some(b), None),
                Some(pb::frame::Image::Raw(r)) => (None, Some(r)),
                None => (None, None),
            };
            let decoded = self.decode(encoded, raw, format!("camera '{camera}' frame {seq}")).await?;
            let image = match decoded {
                Ok(i) => i,
                Err(e) => {
                    reject(tonic::Code::InvalidArgument, "invalid", e.to_string());
                    continue;
                }
            };
            let capture_ts = if msg.capture_ts > 0.0 { msg.capture_ts } else { crate::serve::unix_now() };
            let frame = CameraFrame { camera: camera.clone(), seq, capture_ts, image };
            match self.server.push_frame(frame, arrived) {
                Ok(PushOutcome::Queued) => resp.accepted += 1,
                Ok(PushOutcome::QueuedDropping(n)) => {
                    resp.accepted += 1;
                    resp.dropped += n as u64;
                }
                Err(e) => {
                    let st = status(e);
                    resp.rejected += 1;
                    if resp.errors.len() < MAX_LISTED_ERRORS {
                        resp.errors.push(pb::FrameError {
                            camera_id: camera.clone(),
                            seq,
                            code: st.code() as i32,
                            message: st.message().into(),
                        });
                    }
                }
            }
        }
        Ok(Response::new(resp))
    }

    async fn analyze_image(&self, req: Request<pb::AnalyzeImageRequest>) -> Result<Response<pb::AnalyzeImageResponse>, Status> {
        let r = req.into_inner();
        let model = r.model;
        let (encoded, raw) = match r.image {
            Some(pb::analyze_image_request::Image::Encoded(b)) => (Some(b), None),
            Some(pb::analyze_image_request::Image::Raw(x)) => (None, Some(x)),
            None => (None, None),
        };
        let image = self.decode(encoded, raw, "image".into()).await?;
        let name = if model.is_empty() { self.server.default_pose_model().map_err(status)? } else { model };
        let outcome = match image {
            Ok(img) => self.server.analyze(&name, img).await,
            Err(e) => Err(e),
        };
        let code = match &outcome {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("{:?}", status(e.clone()).code()),
        };
        let label = self.server.model_label(&name);
        self.server.metrics.requests.with_label_values(&[&label, "AnalyzeImage", &code]).inc();
        let res = outcome.map_err(status)?;
        Ok(Response::new(pb::AnalyzeImageResponse {
            model: res.model.clone(),
            model_version: res.version.to_string(),
            width: res.width,
            height: res.height,
            persons: res.persons().iter().enumerate().map(|(i, p)| person_to_wire(p, res.identities.get(i))).collect(),
            queue_ms: res.queue_s * 1e3,
            compute_ms: res.compute_s * 1e3,
            batch_size: res.batch_size as u32,
        }))
    }

    type StreamPosesStream = ResultStream;

    async fn stream_poses(&self, req: Request<pb::StreamPosesRequest>) -> Result<Response<Self::StreamPosesStream>, Status> {
        let filter: HashSet<String> = req.into_inner().camera_ids.into_iter().collect();
        let mut rx = self.server.subscribe();
        let mut shutdown = self.server.shutdown_signal();
        let skipped_metric = self.server.metrics.stream_skipped.with_label_values::<&str>(&[]);
        let stream = async_stream::stream! {
            let mut skipped = 0u64;
            let mut draining = *shutdown.borrow();
            loop {
                let next = if draining {
                    // after shutdown: deliver what is buffered, then end
                    match rx.try_recv() {
                        Ok(r) => Ok(r),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                        Err(_) => break,
                    }
                } else {
                    tokio::select! {
                        r = rx.recv() => r,
                        _ = shutdown.changed() => { draining = true; continue; }
                    }
                };
                match next {
                    Ok(r) => {
                        // a sim camera's id also selects its lanes (`store` -> `store-cam0`, ...)
                        let wanted = filter.is_empty()
                            || filter.contains(&r.camera)
                            || r.camera.rsplit_once("-cam").is_some_and(|(group, _)| filter.contains(group));
                        if wanted {
                            yield Ok(result_to_wire(&r, skipped));
                            skipped = 0;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        skipped += n;
                        skipped_metric.inc_by(n);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn add_camera(&self, req: Request<pb::AddCameraRequest>) -> Result<Response<pb::Camera>, Status> {
        let spec = req.into_inner().camera.ok_or_else(|| Status::invalid_argument("camera is required"))?;
        let cfg = camera_from_wire(spec);
        let id = cfg.id.clone();
        let server = self.server.clone();
        tokio::task::spawn_blocking(move || server.add_client_camera(cfg))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status)?;
        let info = self.server.cameras().into_iter().find(|c| c.config.id == id).ok_or_else(|| Status::internal("camera vanished"))?;
        Ok(Response::new(camera_to_wire(info)))
    }

    async fn remove_camera(&self, req: Request<pb::RemoveCameraRequest>) -> Result<Response<pb::RemoveCameraResponse>, Status> {
        let id = req.into_inner().id;
        let server = self.server.clone();
        tokio::task::spawn_blocking(move || server.remove_camera(&id))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(status)?;
        Ok(Response::new(pb::RemoveCameraResponse { removed: true }))
    }

    async fn list_cameras(&self, _req: Request<pb::ListCamerasRequest>) -> Result<Response<pb::ListCamerasResponse>, Status> {
        Ok(Response::new(pb::ListCamerasResponse { cameras: self.server.cameras().into_iter().map(camera_to_wire).collect() }))
    }

    async fn report_gate_scan(&self, req: Request<pb::GateScan>) -> Result<Response<pb::ReportResponse>, Status> {
        let s = req.into_inner();
        self.server.report_gate_scan(GateScan { t: s.t, lane: s.lane, session: s.session }).map_err(status)?;
        Ok(Response::new(pb::ReportResponse { accepted: 1 }))
    }

    async fn report_shelf_readings(&self, req: Request<Streaming<pb::ShelfReading>>) -> Result<Response<pb::ReportResponse>, Status> {
        let mut stream = req.into_inner();
        let mut accepted = 0;
        while let Some(r) = stream.message().await? {
            self.server.report_shelf_reading(ShelfReading { t: r.t, shelf: r.shelf, grams: r.grams }).map_err(status)?;
            accepted += 1;
        }
        Ok(Response::new(pb::ReportResponse { accepted }))
    }

    type StreamTracksStream = Pin<Box<dyn Stream<Item = Result<pb::TrackUpdate, Status>> + Send>>;

    async fn stream_tracks(&self, _req: Request<pb::StreamTracksRequest>) -> Result<Response<Self::StreamTracksStream>, Status> {
        let mut rx = self.server.subscribe_tracks();
        let mut shutdown = self.server.shutdown_signal();
        let skipped_metric = self.server.metrics.stream_skipped.with_label_values::<&str>(&[]);
        let stream = async_stream::stream! {
            let mut skipped = 0u64;
            loop {
                let next = tokio::select! {
                    r = rx.recv() => r,
                    _ = shutdown.changed() => break,
                };
                match next {
                    Ok(u) => {
                        yield Ok(pb::TrackUpdate {
                            t: u.t,
                            camera_id: u.camera.clone(),
                            tracks: u
                                .tracks
                                .iter()
                                .map(|g| pb::GlobalTrack {
                                    id: g.id,
                                    session: g.session.clone(),
                                    x: g.pos[0],
                                    y: g.pos[1],
                                    vx: g.vel[0],
                                    vy: g.vel[1],
                                    last_seen: g.last_seen,
                                    joints: g
                                        .joints
                                        .iter()
                                        .map(|j| {
                                            let [x, y, z, confidence] = j.unwrap_or([0.0; 4]);
                                            pb::Joint3 { x, y, z, confidence }
                                        })
                                        .collect(),
                                })
                                .collect(),
                            ended_sessions: u.ended.clone(),
                            skipped,
                        });
                        skipped = 0;
                    }
                    Err(RecvError::Lagged(n)) => {
                        skipped += n;
                        skipped_metric.inc_by(n);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Every gRPC service of the server (health, reflection, walkout.v1 Vision, KServe v2), with
/// the message size limits; `serve` puts them behind the auth layer and the connection limits,
/// and the fuzz targets call them in process. The health reporter marks both services
/// serving; `serve` marks them not serving when the server drains.
pub async fn services(server: &Arc<Server>) -> anyhow::Result<(tonic::service::Routes, tonic_health::server::HealthReporter)> {
    use super::kserve::KserveApi;
    use super::proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
    let max_msg = server.config.max_frame_bytes + (1 << 20);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<VisionServer<VisionApi>>().await;
    reporter.set_serving::<GrpcInferenceServiceServer<KserveApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(super::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let vision = VisionServer::new(VisionApi::new(server.clone())).max_decoding_message_size(max_msg).max_encoding_message_size(max_msg);
    let kserve = GrpcInferenceServiceServer::new(KserveApi::new(server.clone()))
        .max_decoding_message_size(max_msg)
        .max_encoding_message_size(max_msg);
    let routes = tonic::service::Routes::new(health).add_service(reflection).add_service(vision).add_service(kserve);
    Ok((routes, reporter))
}

/// Serves every gRPC service on `listener` until the server shuts down.
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    auth: Arc<super::auth::Auth>,
    tls: Option<super::tls::TlsFiles>,
) -> anyhow::Result<()> {
    use super::kserve::KserveApi;
    use super::proto::inference::grpc_inference_service_server::GrpcInferenceServiceServer;
    let (routes, reporter) = services(&server).await?;
    let mut shutdown = server.shutdown_signal();
    let reporter2 = reporter.clone();
    let signal = async move {
        let _ = shutdown.wait_for(|&draining| draining).await;
        reporter2.set_not_serving::<VisionServer<VisionApi>>().await;
        reporter2.set_not_serving::<GrpcInferenceServiceServer<KserveApi>>().await;
    };
    let header_timeout = std::time::Duration::from_secs_f64(server.config.header_read_timeout_s);
    let mut builder = tonic::transport::Server::builder();
    if let Some(t) = &tls {
        builder = builder.tls_config(super::tls::grpc_config(t))?;
    }
    builder
        // bounded per connection: streams, and keepalive to find dead peers
        .max_concurrent_streams(256)
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .layer(super::auth::GrpcAuthLayer(auth))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .add_routes(routes)
        .serve_with_incoming_shutdown(super::conn::grpc_incoming(listener, server.config.max_connections, header_timeout), signal)
        .await?;
    Ok(())
}
