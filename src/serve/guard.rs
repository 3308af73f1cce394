//! Checks on what clients send before it reaches a camera or a model: camera ids, sizes and
//! queue lengths against the server's limits, camera sources confined to the configured
//! media roots and URL prefixes, and model names.

use super::config::{CameraConfig, ServerConfig};
use super::error::ServeError;
use std::path::{Component, Path, PathBuf};

/// Camera ids: 1 to 128 of letters, digits and `-_.:@` (they become metric labels and log
/// fields).
pub fn check_camera_id(id: &str) -> Result<(), ServeError> {
    let ok = !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ServeError::InvalidArgument("camera id must be 1 to 128 letters, digits or -_.:@".into()))
    }
}

/// Frame size, queue length and rate of a camera against the server's limits.
pub fn check_camera_sizes(cfg: &CameraConfig, limits: &ServerConfig) -> Result<(), ServeError> {
    let side = limits.max_frame_side;
    if cfg.width > side || cfg.height > side {
        return Err(ServeError::InvalidArgument(format!(
            "camera '{}': {}x{} is over the largest frame side {side}",
            cfg.id, cfg.width, cfg.height
        )));
    }
    if cfg.queue_size > limits.max_camera_queue {
        return Err(ServeError::InvalidArgument(format!(
            "camera '{}': queue_size {} is over the limit {}",
            cfg.id, cfg.queue_size, limits.max_camera_queue
        )));
    }
    Ok(())
}

/// Model names: 1 to 128 of letters, digits and `-_.`, not starting with a dot; an optional
/// `:version` suffix (digits) is split off, so `m:1` and `m:01` name the model `m`.
pub fn model_name(spec: &str) -> Result<(&str, Option<u64>), ServeError> {
    let (name, version) = match spec.rsplit_once(':') {
        Some((n, v)) => {
            (n, Some(v.parse::<u64>().map_err(|_| ServeError::InvalidArgument(format!("invalid model version in '{}'", shown(spec))))?))
        }
        None => (spec, None),
    };
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok((name, version))
    } else {
        Err(ServeError::InvalidArgument(format!("invalid model name '{}' (letters, digits and -_.)", shown(spec))))
    }
}

/// A client string in a message: at most 64 characters, control characters replaced.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(64).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// Confines a camera that a network client adds: file sources (a video file, an image
/// directory or glob, a synthetic camera's still) must lie under a media root and be regular
/// files; stream URLs must start with an allowed prefix. File urls are rewritten to their
/// canonical absolute paths. The error is the same whether a path is missing or outside the
/// roots, so it reveals nothing about the host's files.
pub fn confine_client_camera(cfg: &mut CameraConfig, limits: &ServerConfig) -> Result<(), ServeError> {
    let refused = || {
        ServeError::PermissionDenied(format!(
            "camera '{}': url is not an allowed source (files under the server's media_roots, streams under its allowed_urls)",
            cfg.id
        ))
    };
    match cfg.source.as_str() {
        "video" | "images" => {}
        "synthetic" if !cfg.url.is_empty() => {}
        // push and sim read no files; an unknown source is refused when the camera starts
        _ => return Ok(()),
    }
    let url = cfg.url.clone();
    if let Some((scheme, _)) = url.split_once("://") {
        let allowed = cfg.source == "video"
            && !scheme.eq_ignore_ascii_case("file")
            && limits.allowed_urls.iter().any(|p| {
                url.len() >= p.len()
                    && url[..p.len()].eq_ignore_ascii_case(p)
                    && matches!(url.as_bytes().get(p.len()), None | Some(b'/') | Some(b'?'))
            });
        return if allowed { Ok(()) } else { Err(refused()) };
    }
    let roots: Vec<PathBuf> = limits.media_roots.iter().filter_map(|r| r.canonicalize().ok()).collect();
    let path = Path::new(&url);
    // lexically first: no parent steps, relative paths against the first root
    if path.components().any(|c| matches!(c, Component::ParentDir)) || roots.is_empty() {
        return Err(refused());
    }
    let (fixed, pattern) = split_glob(path);
    let base = if fixed.is_absolute() { fixed.clone() } else { roots[0].join(&fixed) };
    let canon = base.canonicalize().map_err(|_| refused())?;
    if !roots.iter().any(|r| canon.starts_with(r)) {
        return Err(refused());
    }
    let kind_ok = match (cfg.source.as_str(), &pattern) {
        ("images", _) => canon.is_dir() || (pattern.is_none() && canon.is_file()),
        (_, None) => canon.is_file(),
        _ => false,
    };
    if !kind_ok {
        return Err(refused());
    }
    cfg.url = match pattern {
        Some(p) => canon.join(p).to_string_lossy().into_owned(),
        None => canon.to_string_lossy().into_owned(),
    };
    Ok(())
}

/// A path's leading components without glob characters, and the rest (if any).
fn split_glob(p: &Path) -> (PathBuf, Option<PathBuf>) {
    let mut fixed = PathBuf::new();
    let mut rest = PathBuf::new();
    let mut in_glob = false;
    for c in p.components() {
        let s = c.as_os_str().to_string_lossy();
        in_glob |= s.contains(['*', '?', '[', '{']);
        if in_glob {
            rest.push(c.as_os_str());
        } else {
            fixed.push(c.as_os_str());
        }
    }
    (fixed, in_glob.then_some(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert!(check_camera_id("cam-1.a:b@c").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(129), "é"] {
            assert!(check_camera_id(bad).is_err(), "{bad}");
        }
        assert_eq!(model_name("movenet:01").unwrap(), ("movenet", Some(1)));
        assert_eq!(model_name("m").unwrap(), ("m", None));
        for bad in ["", "../x", ".hidden", "a/b", "m:x", "m:", "a b"] {
            assert!(model_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_cameras_stay_under_roots_and_allowed_urls() {
        let root = std::env::temp_dir().join(format!("walkout-guard-{}", std::process::id()));
        std::fs::create_dir_all(root.join("clips")).unwrap();
        std::fs::write(root.join("clips/a.mp4"), b"x").unwrap();
        let limits =
            ServerConfig { media_roots: vec![root.clone()], allowed_urls: vec!["rtsp://cams.local:554".into()], ..Default::default() };
        let cam = |source: &str, url: &str| CameraConfig { id: "c".into(), source: source.into(), url: url.into(), ..Default::default() };
        let mut ok = cam("video", "clips/a.mp4");
        confine_client_camera(&mut ok, &limits).unwrap();
        assert!(Path::new(&ok.url).is_absolute() && ok.url.ends_with("clips/a.mp4"));
        let mut glob = cam("images", "clips/*.png");
        confine_client_camera(&mut glob, &limits).unwrap();
        for (source, url) in [
            ("video", "/etc/shadow"),
            ("video", "/etc/missing-file"),
            ("video", "clips/../../etc/passwd"),
            ("video", "clips"),
            ("video", "/dev/zero"),
            ("synthetic", "/dev/zero"),
            ("images", "/root/*"),
            ("video", "http://169.254.169.254/latest"),
            ("video", "rtsp://cams.local:5540/x"),
            ("video", "file:///etc/passwd"),
        ] {
            let e = confine_client_camera(&mut cam(source, url), &limits).unwrap_err();
            assert!(matches!(e, ServeError::PermissionDenied(_)) && !e.to_string().contains(url), "{source} {url}: {e}");
        }
        confine_client_camera(&mut cam("video", "rtsp://cams.local:554/stream1"), &limits).unwrap();
        let _ = std::fs::remove_dir_all(root);
    }
}
