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
    let exec: Box<dyn Executor> = match device {
        Device::Cpu => Box::new(cpu::CpuExecutor::new()),
        Device::Gpu => Box::new(gpu::GpuExecutor::new()?),
        Device::Opencl => {
            let e = opencl::OpenClExecutor::new()?;
            tracing::info!("opencl executor on {}", e.adapter());
            Box::new(e)
        }
        Device::Auto => match gpu::GpuExecutor::new() {
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
