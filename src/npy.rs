//! Raw NumPy `.npy` files (format versions 1-3, C order) in and out.

use crate::graph::{DType, Tensor};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    #[error("{path}: not a valid .npy file: {msg}")]
    Format { path: String, msg: String },
}

fn descr(dt: DType) -> &'static str {
    match dt {
        DType::F32 => "<f4",
        DType::F16 => "<f2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::Bool => "|b1",
    }
}

/// Parses `.npy` bytes.
pub fn parse(bytes: &[u8], path: &str) -> Result<Tensor, NpyError> {
    let fmt = |msg: &str| NpyError::Format { path: path.to_string(), msg: msg.to_string() };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(fmt("missing magic"));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        _ => return Err(fmt("unsupported version")),
    };
    let header = bytes.get(start..start + hlen).ok_or_else(|| fmt("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| fmt("header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}'"))?;
        Some(header[i + key.len() + 2..].trim_start().trim_start_matches(':').trim_start())
    };
    let d = field("descr").ok_or_else(|| fmt("no descr"))?;
    let d = d.trim_start_matches('\'');
    let d = &d[..d.find('\'').ok_or_else(|| fmt("bad descr"))?];
    let dtype = match d {
        "<f4" => DType::F32,
        "<f2" => DType::F16,
        "<i4" => DType::I32,
        "<i8" => DType::I64,
        "|u1" | "<u1" => DType::U8,
        "|b1" => DType::Bool,
        other => return Err(fmt(&format!("unsupported dtype '{other}'"))),
    };
    if field("fortran_order").is_some_and(|f| f.starts_with("True")) {
        return Err(fmt("Fortran order is not supported"));
    }
    let s = field("shape").ok_or_else(|| fmt("no shape"))?;
    let s = s.split_once('(').and_then(|(_, rest)| rest.split_once(')')).map(|(inner, _)| inner).ok_or_else(|| fmt("bad shape"))?;
    let shape: Vec<usize> = s
        .split(',')
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().map_err(|_| fmt("bad shape")))
        .collect::<Result<_, _>>()?;
    let data = &bytes[start + hlen..];
    let need = shape
        .iter()
        .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
        .filter(|&n| n <= data.len())
        .ok_or_else(|| fmt(&format!("data truncated: {} bytes for shape {shape:?} of {dtype}", data.len())))?;
    Tensor::from_le_bytes(dtype, shape, &data[..need]).ok_or_else(|| fmt("bad data"))
}

pub fn read(path: &Path) -> Result<Tensor, NpyError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| NpyError::Io { path: p.clone(), msg: e.to_string() })?;
    parse(&bytes, &p)
}

/// Serialises a tensor as `.npy` version 1.0.
pub fn to_bytes(t: &Tensor) -> Vec<u8> {
    let shape = match t.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", t.shape[0]),
        _ => format!("({})", t.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr(t.dtype()), shape);
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&t.to_le_bytes());
    out
}

pub fn write(path: &Path, t: &Tensor) -> Result<(), NpyError> {
    std::fs::write(path, to_bytes(t)).map_err(|e| NpyError::Io { path: path.display().to_string(), msg: e.to_string() })
}
