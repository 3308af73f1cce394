//! Image sequences: a directory or a glob, replayed at a set rate or as fast as possible.

use super::{CameraFrame, FrameSource, SourceError};
use crate::vision::image_io;
use std::path::{Path, PathBuf};

/// An image sequence: the files of a directory, or of a glob like `dir/frame-*.jpg` (one `*`
/// in the file name), in name order.
#[derive(Debug)]
pub struct ImageSeqSource {
    camera: String,
    paths: Vec<PathBuf>,
    next: usize,
    seq: u64,
    looped: bool,
    fps: Option<f64>,
    max_side: u32,
}

impl ImageSeqSource {
    pub fn open(camera: &str, pattern: &str, looped: bool, fps: Option<f64>, max_side: u32) -> Result<Self, SourceError> {
        let fail = |msg: String| SourceError::Failed { source_id: camera.into(), msg };
        let p = Path::new(pattern);
        let (dir, filter): (PathBuf, Option<(String, String)>) = if p.is_dir() {
            (p.to_path_buf(), None)
        } else {
            let name =
                p.file_name().and_then(|n| n.to_str()).ok_or_else(|| fail(format!("'{pattern}' is neither a directory nor a glob")))?;
            let (pre, post) =
                name.split_once('*').ok_or_else(|| fail(format!("'{pattern}' is neither a directory nor a glob with one '*'")))?;
            (p.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")), Some((pre.to_string(), post.to_string())))
        };
        let rd = std::fs::read_dir(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let mut paths: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                match &filter {
                    Some((pre, post)) => n.len() >= pre.len() + post.len() && n.starts_with(pre.as_str()) && n.ends_with(post.as_str()),
                    None => {
                        let l = n.to_ascii_lowercase();
                        l.ends_with(".jpg") || l.ends_with(".jpeg") || l.ends_with(".png")
                    }
                }
            })
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(fail(format!("no images match '{pattern}'")));
        }
        Ok(ImageSeqSource { camera: camera.into(), paths, next: 0, seq: 0, looped, fps, max_side })
    }
}

impl FrameSource for ImageSeqSource {
    fn cameras(&self) -> Vec<String> {
        vec![self.camera.clone()]
    }
    fn fps(&self) -> Option<f64> {
        self.fps
    }
    fn next_frames(&mut self) -> Result<Option<Vec<CameraFrame>>, SourceError> {
        if self.next >= self.paths.len() {
            if !self.looped {
                return Ok(None);
            }
            self.next = 0;
        }
        let path = &self.paths[self.next];
        self.next += 1;
        let seq = self.seq;
        self.seq += 1;
        let bytes = std::fs::read(path).map_err(|e| SourceError::BadFrame {
            source_id: self.camera.clone(),
            seq,
            msg: format!("{}: {e}", path.display()),
        })?;
        let image = image_io::decode_limited(&bytes, &path.display().to_string(), self.max_side).map_err(|e| SourceError::BadFrame {
            source_id: self.camera.clone(),
            seq,
            msg: e.to_string(),
        })?;
        let capture_ts = self.fps.map(|f| seq as f64 / f).unwrap_or(0.0);
        Ok(Some(vec![CameraFrame { camera: self.camera.clone(), seq, capture_ts, image }]))
    }
}
