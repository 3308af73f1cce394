//! The values of a CPU plan, and the pool that recycles their f32 buffers.
//!
//! The vector kernels (convolutions, elementwise ops) write f32 values into buffers taken
//! from the plan's [`Pool`]; when a value's last reader has run, its buffer goes back. The
//! shapes of a plan are fixed, so after the first run every such buffer is reused and no
//! intermediate is allocated (nor page-faulted in, which cost more than the allocation:
//! at batch 8 MoveNet's layers are tens of megabytes each). Other values stay candle
//! tensors, as the reference kernels and candle's matmul make them.

use super::simd::buf::Buf;
use super::{backend_err, kernels, to_host, Result};
use crate::graph::{DType, Tensor, TensorData};
use candle_core::{Device, Tensor as CTensor};
use std::sync::Arc;

/// One value of a plan.
#[derive(Clone, Debug)]
pub(super) enum Val {
    /// Any dtype, as candle holds it (bool as u8).
    C(CTensor),
    /// Contiguous f32 from the pool (views share the buffer).
    F(Arc<Buf>, Vec<usize>),
}

impl Val {
    pub fn dims(&self) -> &[usize] {
        match self {
            Val::C(t) => t.dims(),
            Val::F(_, s) => s,
        }
    }

    /// Runs `f` on the value's contiguous f32 data.
    pub fn with_f32<T>(&self, f: impl FnOnce(&[f32]) -> T) -> Result<T> {
        match self {
            Val::F(v, _) => Ok(f(v)),
            Val::C(t) => {
                let t = t.contiguous().map_err(backend_err)?;
                kernels::with_f32(&t, f).map_err(backend_err)
            }
        }
    }

    /// Runs `f` on the contiguous f32 data of several values at once.
    pub fn with_f32_all<T>(vals: &[&Val], f: impl FnOnce(&[&[f32]]) -> T) -> Result<T> {
        let tensors: Vec<Option<CTensor>> = vals
            .iter()
            .map(|v| match v {
                Val::C(t) => t.contiguous().map(Some).map_err(backend_err),
                Val::F(..) => Ok(None),
            })
            .collect::<Result<_>>()?;
        let guards: Vec<_> = tensors.iter().map(|t| t.as_ref().map(|t| t.storage_and_layout())).collect();
        let mut slices: Vec<&[f32]> = Vec::with_capacity(vals.len());
        for (v, g) in vals.iter().zip(&guards) {
            slices.push(match (v, g) {
                (Val::F(a, _), _) => &a[..],
                (_, Some((st, layout))) => {
                    let (a, b) = layout.contiguous_offsets().ok_or_else(|| backend_err("tensor is not contiguous"))?;
                    match &**st {
                        candle_core::Storage::Cpu(candle_core::CpuStorage::F32(x)) => &x[a..b],
                        _ => return Err(backend_err("expected an f32 CPU tensor")),
                    }
                }
                _ => return Err(backend_err("value without data (this is a bug)")),
            });
        }
        Ok(f(&slices))
    }

    /// As a candle tensor (pooled data is copied).
    pub fn candle(&self) -> Result<CTensor> {
        match self {
            Val::C(t) => Ok(t.clone()),
            Val::F(v, s) => CTensor::from_vec(v.to_vec(), s.as_slice(), &Device::Cpu).map_err(backend_err),
        }
    }

    /// As a host tensor of the IR dtype.
    pub fn host(&self, dtype: DType) -> Result<Tensor> {
        match self {
            Val::C(t) => to_host(t, dtype),
            Val::F(v, s) => Ok(Tensor::new(s.clone(), TensorData::F32(v.to_vec()))),
        }
    }

    /// The same data under another shape of as many elements.
    pub fn reshape(&self, shape: Vec<usize>) -> Result<Val> {
        match self {
            Val::C(t) => Ok(Val::C(t.reshape(shape).map_err(backend_err)?)),
            Val::F(v, _) => Ok(Val::F(v.clone(), shape)),
        }
    }
}

/// Free f32 buffers of one plan, in the order they were given back.
#[derive(Debug, Default)]
pub(super) struct Pool {
    free: Vec<Buf>,
}

impl Pool {
    /// A buffer of `len` values, not zeroed: every kernel that takes one writes it whole.
    pub fn take(&mut self, len: usize) -> Buf {
        // the most recently freed buffer that holds len and is not far larger: its lines
        // are the likeliest to be in cache still, so the kernel's stores do not first
        // fetch them from memory
        let fits = |b: &Buf| b.capacity() >= len && b.capacity() <= 2 * len + 1024;
        let mut v = match self.free.iter().rposition(fits) {
            Some(i) => self.free.remove(i),
            None => Buf::zeros(len),
        };
        // the kernels that take a pooled buffer store every element before anything reads
        // it; what it held before is stale but initialised
        v.set_len(len);
        v
    }

    /// Gives a value's buffer back when nothing else shares it.
    pub fn give(&mut self, v: Val) {
        if let Val::F(a, _) = v {
            if let Ok(buf) = Arc::try_unwrap(a) {
                self.free.push(buf);
            }
        }
    }
}
