//! Host tensors: typed, dense, row-major. Used for constants, folding, I/O and as the
//! reference the executors are checked against.

use half::f16;
use std::fmt;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
    I32,
    I64,
    U8,
    Bool,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F16 => 2,
            DType::I64 => 8,
            DType::U8 | DType::Bool => 1,
        }
    }
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F16)
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::U8 => "u8",
            DType::Bool => "bool",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Dense element storage.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    F16(Vec<f16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::F16(v) => v.len(),
            TensorData::I32(v) => v.len(),
            TensorData::I64(v) => v.len(),
            TensorData::U8(v) => v.len(),
            TensorData::Bool(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::F32(_) => DType::F32,
            TensorData::F16(_) => DType::F16,
            TensorData::I32(_) => DType::I32,
            TensorData::I64(_) => DType::I64,
            TensorData::U8(_) => DType::U8,
            TensorData::Bool(_) => DType::Bool,
        }
    }
    pub fn zeros(dtype: DType, n: usize) -> TensorData {
        match dtype {
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::F16 => TensorData::F16(vec![f16::ZERO; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::I64 => TensorData::I64(vec![0; n]),
            DType::U8 => TensorData::U8(vec![0; n]),
            DType::Bool => TensorData::Bool(vec![false; n]),
        }
    }
}

/// Applies `$body` to the vector inside a [`TensorData`], binding it as `$v`,
/// and rewraps the result in the same variant.
#[macro_export]
macro_rules! map_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::graph::TensorData::F32($v) => $crate::graph::TensorData::F32($body),
            $crate::graph::TensorData::F16($v) => $crate::graph::TensorData::F16($body),
            $crate::graph::TensorData::I32($v) => $crate::graph::TensorData::I32($body),
            $crate::graph::TensorData::I64($v) => $crate::graph::TensorData::I64($body),
            $crate::graph::TensorData::U8($v) => $crate::graph::TensorData::U8($body),
            $crate::graph::TensorData::Bool($v) => $crate::graph::TensorData::Bool($body),
        }
    };
}

/// A dense host tensor.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{:?}", self.dtype(), self.shape)
    }
}

/// Elements of a shape; saturates instead of overflowing, so a hostile shape fails the size
/// checks that follow instead of wrapping round to a small number.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

impl Tensor {
    /// Builds a tensor; the caller guarantees `data.len() == numel(shape)`.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Tensor {
        debug_assert_eq!(numel(&shape), data.len(), "tensor data length (this is a bug)");
        Tensor { shape, data }
    }
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Tensor {
        let n = numel(&shape);
        Tensor::new(shape, TensorData::zeros(dtype, n))
    }
    pub fn f32(shape: Vec<usize>, v: Vec<f32>) -> Tensor {
        Tensor::new(shape, TensorData::F32(v))
    }
    pub fn i32(shape: Vec<usize>, v: Vec<i32>) -> Tensor {
        Tensor::new(shape, TensorData::I32(v))
    }
    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> Tensor {
        Tensor::new(shape, TensorData::I64(v))
    }
    pub fn scalar_f32(v: f32) -> Tensor {
        Tensor::f32(vec![], vec![v])
    }
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }
    pub fn numel(&self) -> usize {
        self.data.len()
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }
    /// Values as i64, for integer and bool tensors (shape arguments, indices).
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        Some(match &self.data {
            TensorData::I32(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::I64(v) => v.clone(),
            TensorData::U8(v) => v.iter().map(|&x| x as i64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as i64).collect(),
            _ => return None,
        })
    }
    /// Values as f64, any dtype.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            TensorData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::F16(v) => v.iter().map(|&x| x.to_f64()).collect(),
            TensorData::I32(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::U8(v) => v.iter().map(|&x| x as f64).collect(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8 as f64).collect(),
        }
    }
    /// Converts to another dtype with C-like casts (float to int truncates toward zero).
    pub fn cast(&self, to: DType) -> Tensor {
        if self.dtype() == to {
            return self.clone();
        }
        let data = match (&self.data, to) {
            (TensorData::F32(v), DType::F16) => TensorData::F16(v.iter().map(|&x| f16::from_f32(x)).collect()),
            (TensorData::F16(v), DType::F32) => TensorData::F32(v.iter().map(|&x| x.to_f32()).collect()),
            (TensorData::Bool(v), DType::F32) => TensorData::F32(v.iter().map(|&x| x as u8 as f32).collect()),
            (TensorData::I32(v), DType::F32) => TensorData::F32(v.iter().map(|&x| x as f32).collect()),
            (TensorData::I64(v), DType::F32) => TensorData::F32(v.iter().map(|&x| x as f32).collect()),
            (TensorData::U8(v), DType::F32) => TensorData::F32(v.iter().map(|&x| x as f32).collect()),
            (TensorData::F32(v), DType::I32) => TensorData::I32(v.iter().map(|&x| x as i32).collect()),
            (TensorData::F32(v), DType::I64) => TensorData::I64(v.iter().map(|&x| x as i64).collect()),
            (TensorData::F32(v), DType::U8) => TensorData::U8(v.iter().map(|&x| x as u8).collect()),
            (TensorData::F32(v), DType::Bool) => TensorData::Bool(v.iter().map(|&x| x != 0.0).collect()),
            (_, DType::F32) => TensorData::F32(self.to_f64_vec().into_iter().map(|x| x as f32).collect()),
            (_, DType::F16) => TensorData::F16(self.to_f64_vec().into_iter().map(f16::from_f64).collect()),
            (_, DType::I32) => TensorData::I32(self.to_f64_vec().into_iter().map(|x| x as i32).collect()),
            (_, DType::I64) => match &self.data {
                TensorData::I32(v) => TensorData::I64(v.iter().map(|&x| x as i64).collect()),
                _ => TensorData::I64(self.to_f64_vec().into_iter().map(|x| x as i64).collect()),
            },
            (_, DType::U8) => TensorData::U8(self.to_f64_vec().into_iter().map(|x| x as u8).collect()),
            (_, DType::Bool) => TensorData::Bool(self.to_f64_vec().into_iter().map(|x| x != 0.0).collect()),
        };
        Tensor::new(self.shape.clone(), data)
    }
    /// Same data, new shape (element count must match).
    pub fn reshaped(mut self, shape: Vec<usize>) -> Tensor {
        debug_assert_eq!(numel(&shape), self.numel());
        self.shape = shape;
        self
    }
    /// Raw little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match &self.data {
            TensorData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            TensorData::U8(v) => v.clone(),
            TensorData::Bool(v) => v.iter().map(|&x| x as u8).collect(),
        }
    }
    /// Builds a tensor from little-endian bytes; `None` when the byte count is wrong.
    pub fn from_le_bytes(dtype: DType, shape: Vec<usize>, bytes: &[u8]) -> Option<Tensor> {
        // a shape whose byte count does not fit in usize cannot match any byte string
        if numel(&shape).checked_mul(dtype.size()) != Some(bytes.len()) {
            return None;
        }
        let data = match dtype {
            DType::F32 => TensorData::F32(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
            DType::F16 => TensorData::F16(bytes.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]])).collect()),
            DType::I32 => TensorData::I32(bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
            DType::I64 => TensorData::I64(
                bytes.chunks_exact(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect(),
            ),
            DType::U8 => TensorData::U8(bytes.to_vec()),
            DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        };
        Some(Tensor::new(shape, data))
    }
    /// Maximum absolute difference against another tensor of the same shape, as f64.
    pub fn max_abs_diff(&self, other: &Tensor) -> Option<f64> {
        if self.shape != other.shape {
            return None;
        }
        let a = self.to_f64_vec();
        let b = other.to_f64_vec();
        Some(a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max))
    }
}
