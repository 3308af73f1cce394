//! Device choice: the one place that maps a device name to an executor.

use super::{cpu, gpu, opencl, Executor, Result, RuntimeError};
use serde::{Deserialize, Serialize};

/// Where a model runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The candle CPU executor.
    Cpu,
    /// The wgpu executor on any adapter, software ones (lavapipe) included.
    Gpu,
    /// The OpenCL executor (kernels/*.cl) on an OpenCL device: an FPGA board, a GPU, or PoCL
    /// on the CPU.
    Opencl,
    /// A hardware GPU when there is one, otherwise the CPU executor.
    #[default]
    Auto,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
            Device::Opencl => "opencl",
            Device::Auto => "auto",
        }
    }
}

/// How a model's weights and activations are stored on the device (`precision` in its
/// config). Sums are f32 either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// f16 storage on a wgpu adapter with SHADER_F16 (`runtime::gpu::half`); other executors
    /// and adapters run f32 and say so.
    F16,
}

impl std::str::FromStr for Precision {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Precision> {
        match s {
            "f32" => Ok(Precision::F32),
            "f16" => Ok(Precision::F16),
            other => Err(RuntimeError::Backend { backend: "precision", msg: format!("unknown precision '{other}' (f32 or f16)") }),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        })
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Device {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Device> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "gpu" => Ok(Device::Gpu),
            "opencl" => Ok(Device::Opencl),
            "auto" => Ok(Device::Auto),
            other => Err(RuntimeError::UnknownDevice(other.to_string())),
        }
    }
}

/// Builds the executor for a device. `Gpu` takes any wgpu adapter (lavapipe included);
/// `Auto` takes a hardware GPU adapter when there is one, otherwise the CPU executor (a
/// software adapter such as lavapipe is much slower than it), and logs which adapter runs.
pub fn executor_for(device: Device) -> Result<Box<dyn Executor>> {
    executor_with(device, Precision::F32)
}

/// The executor for a device at a precision. f16 is honoured by the wgpu executor on an
/// adapter with SHADER_F16; anywhere else the model runs in f32, with a warning.
pub fn executor_with(device: Device, precision: Precision) -> Result<Box<dyn Executor>> {
    let gpu = || -> Result<gpu::GpuExecutor> {
        let g = gpu::GpuExecutor::new()?;
        if precision == Precision::F16 && !g.has_f16() {
            tracing::warn!("precision f16 asked, but {} has no SHADER_F16: running f32", g.adapter());
            return Ok(g);
        }
        Ok(g.with_precision(precision))
    };
    if precision == Precision::F16 && matches!(device, Device::Cpu | Device::Opencl) {
        tracing::warn!("precision f16 runs on the wgpu executor only; the {device} executor runs f32");
    }
    let exec: Box<dyn Executor> = match device {
        Device::Cpu => Box::new(cpu::CpuExecutor::new()),
        Device::Gpu => Box::new(gpu()?),
        Device::Opencl => {
            let e = opencl::OpenClExecutor::new()?;
            tracing::info!("opencl executor on {}", e.adapter());
            Box::new(e)
        }
        Device::Auto => match gpu() {
            Ok(g) if g.context().is_hardware() => Box::new(g),
            Ok(g) => {
                // a software rasteriser (lavapipe) is far slower than the CPU executor
                tracing::info!("only a software GPU adapter ({}); using the CPU executor (--device gpu forces it)", g.adapter());
                Box::new(cpu::CpuExecutor::new())
            }
            Err(e) => {
                tracing::warn!("no GPU adapter ({e}); using the CPU executor");
                Box::new(cpu::CpuExecutor::new())
            }
        },
    };
    if device == Device::Auto {
        eprintln!("walkout: device auto -> {} executor on {}", exec.name(), exec.adapter());
    }
    Ok(exec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_round_trip() {
        for d in [Device::Cpu, Device::Gpu, Device::Opencl, Device::Auto] {
            assert_eq!(d.as_str().parse::<Device>().expect("parses"), d);
        }
        assert!(matches!("tpu".parse::<Device>(), Err(RuntimeError::UnknownDevice(_))));
    }
}
