//! Finding a GPU adapter and talking to it: device creation, shader modules with the
//! right 64-bit product variant, and the buffer round trips every kernel uses.

use std::borrow::Cow;
use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::counters::{Counters, GpuCounters};

/// Why no GPU could be used.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No Vulkan adapter was found (no driver, or filtered out by `WGPU_ADAPTER_NAME`).
    #[error("no GPU adapter found (install a Vulkan driver, e.g. mesa-vulkan-drivers for lavapipe)")]
    NoAdapter,
    /// The adapter refused to create a device.
    #[error("GPU adapter {adapter}: cannot create a device: {reason}")]
    Device { adapter: String, reason: String },
    /// A buffer could not be read back from the device.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// The input does not fit the device's limits.
    #[error("{0}")]
    TooLarge(String),
    /// The device refused the work: out of memory, or a validation or internal error.
    #[error("GPU {what}: {reason}")]
    Rejected { what: String, reason: String },
}

/// How 32x32 -> 64-bit products are computed in the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Products {
    /// 16-bit halves: runs on every adapter.
    Portable,
    /// Native `u64` (`SHADER_INT64`), where the adapter offers it.
    Int64,
}

/// One GPU device with its queue, ready to run Proofline's kernels.
///
/// ```no_run
/// let gpu = proofline_shaders::Gpu::first().expect("a GPU adapter");
/// println!("running on {}", gpu.describe());
/// ```
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    products: Products,
    int64_available: bool,
    counters: Counters,
    /// Tests: make the next [`Gpu::scoped`] call hit a real device error.
    #[cfg(test)]
    fail_next_scope: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu").field("adapter", &self.info.name).field("products", &self.products).finish()
    }
}

/// The Vulkan adapters `WGPU_ADAPTER_NAME` admits, discrete GPUs first and CPU drivers last.
fn candidates() -> Vec<wgpu::Adapter> {
    let mut adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::VULKAN));
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted = wanted.to_lowercase();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&wanted));
    }
    adapters.sort_by_key(|a| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => 2,
        wgpu::DeviceType::Cpu => 3,
    });
    adapters
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    // Vulkan is the one backend built in; WGPU_BACKEND may still narrow it.
    desc.backends &= wgpu::Backends::VULKAN;
    wgpu::Instance::new(desc)
}

impl Gpu {
    /// Every usable adapter (GPUs first, then CPU drivers such as lavapipe), each opened
    /// with the fastest product variant it offers. `WGPU_ADAPTER_NAME` filters by name.
    pub fn all() -> Vec<Arc<Gpu>> {
        Self::open_each(candidates())
    }

    /// Every usable hardware adapter; CPU drivers are not even opened (lavapipe's device
    /// holds about 70 MB of heap).
    pub fn hardware() -> Vec<Arc<Gpu>> {
        let mut adapters = candidates();
        adapters.retain(|adapter| adapter.get_info().device_type != wgpu::DeviceType::Cpu);
        Self::open_each(adapters)
    }

    fn open_each(adapters: Vec<wgpu::Adapter>) -> Vec<Arc<Gpu>> {
        adapters.into_iter().filter_map(|adapter| Self::open_usable(adapter, None)).collect()
    }

    /// The first (preferred) usable adapter.
    pub fn first() -> Result<Arc<Gpu>, GpuError> {
        candidates()
            .into_iter()
            .find_map(|adapter| Self::open_usable(adapter, None))
            .ok_or(GpuError::NoAdapter)
    }

    /// The process-wide default device, opened on first use: the first hardware adapter,
    /// as `--gpu auto` picks it (a CPU driver such as lavapipe is slower than Plonky3 on the
    /// CPU). `Err` when the machine has none.
    pub fn shared() -> Result<Arc<Gpu>, GpuError> {
        crate::select::lane_adapters(crate::select::GpuMode::Auto)?
            .first()
            .cloned()
            .ok_or(GpuError::NoAdapter)
    }

    /// The preferred adapter, forcing a product variant (tests compare both).
    pub fn with_products(products: Products) -> Result<Gpu, GpuError> {
        let adapter = candidates().into_iter().next().ok_or(GpuError::NoAdapter)?;
        Self::open(adapter, Some(products))
    }

    /// [`open`](Self::open), or `None` with a warning naming why the adapter is left out.
    fn open_usable(adapter: wgpu::Adapter, products: Option<Products>) -> Option<Arc<Gpu>> {
        Self::open(adapter, products)
            .map(Arc::new)
            .inspect_err(|e| tracing::warn!("GPU adapter left out: {e}"))
            .ok()
    }

    fn open(adapter: wgpu::Adapter, products: Option<Products>) -> Result<Gpu, GpuError> {
        let info = adapter.get_info();
        let int64_available = adapter.features().contains(wgpu::Features::SHADER_INT64);
        let products = products.unwrap_or(if int64_available { Products::Int64 } else { Products::Portable });
        if products == Products::Int64 && !int64_available {
            return Err(GpuError::Device {
                adapter: info.name,
                reason: "SHADER_INT64 is not supported".into(),
            });
        }
        let required_features =
            if products == Products::Int64 { wgpu::Features::SHADER_INT64 } else { wgpu::Features::empty() };
        // Ask for the adapter's own limits: big storage buffers are the point of a GPU.
        let required_limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("proofline"),
            required_features,
            required_limits,
            ..Default::default()
        }))
        .map_err(|e| GpuError::Device { adapter: info.name.clone(), reason: e.to_string() })?;
        Ok(Gpu {
            device,
            queue,
            info,
            products,
            int64_available,
            counters: Counters::default(),
            #[cfg(test)]
            fail_next_scope: Default::default(),
        })
    }

    /// "NAME (BACKEND, TYPE, products)", for start-up lines and benchmark reports.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, {} products{})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            match self.products {
                Products::Int64 => "int64",
                Products::Portable => "16-bit split",
            },
            if self.products == Products::Portable && self.int64_available {
                "; int64 available"
            } else {
                ""
            }
        )
    }

    /// Adapter name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Whether this is a real GPU (not a CPU driver such as lavapipe).
    pub fn is_hardware(&self) -> bool {
        self.info.device_type != wgpu::DeviceType::Cpu
    }

    /// Which product variant the kernels use.
    pub fn products(&self) -> Products {
        self.products
    }

    /// The device limits in force.
    pub fn limits(&self) -> wgpu::Limits {
        self.device.limits()
    }

    /// Kernel launches on this device so far, and the work its seams finished on the CPU
    /// instead (see [`GpuCounters`]).
    pub fn counters(&self) -> GpuCounters {
        self.counters.snapshot()
    }

    /// The live counters, for the kernels and seams to record in.
    pub(crate) fn count(&self) -> &Counters {
        &self.counters
    }

    /// Tests: the next [`scoped`](Self::scoped) call creates an invalid buffer inside its
    /// scope, so the device reports a validation error as a real failure would.
    #[cfg(test)]
    pub(crate) fn fail_next_scope(&self) {
        self.fail_next_scope.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Compile a kernel: the product variant, BabyBear arithmetic, then `kernel`.
    pub(crate) fn module(&self, label: &str, kernel: &str) -> wgpu::ShaderModule {
        let products = match self.products {
            Products::Portable => include_str!("../wgsl/field_portable.wgsl"),
            Products::Int64 => include_str!("../wgsl/field_int64.wgsl"),
        };
        let source = format!("{products}\n{}\n{kernel}", include_str!("../wgsl/babybear.wgsl"));
        self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(Cow::Owned(source)),
        })
    }

    /// A compute pipeline for `entry` in `module`, with its bind group layout inferred.
    ///
    /// Workgroup memory is not zero-initialised: no kernel reads a tile word it did not
    /// write (the NTT's unused tile lanes only ever meet each other and are never stored),
    /// and clearing a 32 KiB tile on every dispatch is pure overhead.
    pub(crate) fn pipeline(&self, module: &wgpu::ShaderModule, entry: &str) -> wgpu::ComputePipeline {
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                zero_initialize_workgroup_memory: zero_init_workgroup_memory(),
                ..Default::default()
            },
            cache: None,
        })
    }

    /// A storage buffer holding `words`, readable and writable by kernels and copyable.
    pub(crate) fn storage(&self, label: &str, words: &[u32]) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(words),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// An uninitialised storage buffer of `len` words.
    pub(crate) fn storage_empty(&self, label: &str, len: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (len.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// A small uniform buffer of parameters.
    pub(crate) fn uniform(&self, label: &str, words: &[u32]) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(words),
            usage: wgpu::BufferUsages::UNIFORM,
        })
    }

    /// Bind `buffers` to bindings 0.. of group 0 of `pipeline`.
    pub(crate) fn bind(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<_> = buffers.iter().enumerate().map(|(i, &b)| (i as u32, b)).collect();
        self.bind_at(pipeline, &entries)
    }

    /// Bind each `(binding, buffer)` of group 0 of `pipeline`.
    pub(crate) fn bind_at(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[(u32, &wgpu::Buffer)],
    ) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<_> = buffers
            .iter()
            .map(|&(binding, b)| wgpu::BindGroupEntry { binding, resource: b.as_entire_binding() })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        })
    }

    /// Copy the first `len` words of `buffer` back to the host, waiting for all work
    /// submitted so far.
    pub(crate) fn read(&self, buffer: &wgpu::Buffer, len: usize) -> Result<Vec<u32>, GpuError> {
        let size = (len * 4) as u64;
        if size == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError::Readback(e.to_string()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        let words = {
            let view = slice.get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
            bytemuck::cast_slice(&view).to_vec()
        };
        staging.unmap();
        Ok(words)
    }

    /// Run `work` with the device's errors (out of memory, validation, internal) captured
    /// and returned as [`GpuError::Rejected`]. Unscoped, they go to wgpu's default handler,
    /// which panics; scoped, the seams fall back to the CPU instead (a GPU too small for a
    /// matrix proves it on the CPU).
    pub(crate) fn scoped<T>(
        &self,
        what: &str,
        work: impl FnOnce() -> Result<T, GpuError>,
    ) -> Result<T, GpuError> {
        let scopes =
            [wgpu::ErrorFilter::OutOfMemory, wgpu::ErrorFilter::Validation, wgpu::ErrorFilter::Internal]
                .map(|filter| self.device.push_error_scope(filter));
        #[cfg(test)]
        if self.fail_next_scope.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.create_invalid_buffer();
        }
        let result = work();
        // Scopes pop innermost first.
        let mut caught = None;
        for scope in scopes.into_iter().rev() {
            caught = caught.or(pollster::block_on(scope.pop()));
        }
        match caught {
            Some(e) => Err(GpuError::Rejected { what: what.into(), reason: e.to_string() }),
            None => result,
        }
    }

    /// A validation error: MAP_READ may only be combined with COPY_DST.
    #[cfg(test)]
    fn create_invalid_buffer(&self) {
        let _ = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("invalid"),
            size: 64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
    }

    /// Record dispatches with `record` and submit them.
    pub(crate) fn submit(&self, record: impl FnOnce(&mut wgpu::CommandEncoder)) {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        record(&mut encoder);
        self.queue.submit([encoder.finish()]);
    }

    /// Wait for everything submitted so far (for timing).
    pub fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Readback(e.to_string()))
    }
}

/// `PROOFLINE_GPU_ZERO_INIT=1` restores WebGPU's zeroing of workgroup memory, to measure
/// what leaving it out saves (`proofline-bench kernels`).
fn zero_init_workgroup_memory() -> bool {
    std::env::var_os("PROOFLINE_GPU_ZERO_INIT").is_some_and(|v| v == "1")
}

/// Split `groups` workgroups into a 2-D grid within the per-dimension limit; kernels
/// recover the flat index as `id.x + id.y * num_workgroups.x * WG`.
pub(crate) fn grid(groups: u32) -> (u32, u32) {
    const MAX: u32 = 65_535;
    if groups <= MAX { (groups.max(1), 1) } else { (MAX, groups.div_ceil(MAX)) }
}

/// One compute pass dispatching `pipeline` over `groups` workgroups.
pub(crate) fn dispatch(
    encoder: &mut wgpu::CommandEncoder,
    pipeline: &wgpu::ComputePipeline,
    bind: &wgpu::BindGroup,
    groups: u32,
) {
    let (x, y) = grid(groups);
    let mut pass = encoder.begin_compute_pass(&Default::default());
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind, &[]);
    pass.dispatch_workgroups(x, y, 1);
}

impl Gpu {
    /// The device's copy bandwidth in bytes/s (read + write), measured by copying a
    /// `bytes`-sized buffer to another on the device `reps` times: the reference a
    /// memory-bound kernel is compared with.
    pub fn copy_bandwidth(&self, bytes: usize, reps: usize) -> Result<f64, GpuError> {
        let words = bytes / 4;
        let src = self.storage_empty("bandwidth-src", words);
        let dst = self.storage_empty("bandwidth-dst", words);
        let size = (words * 4) as u64;
        // One warm-up copy, then the timed ones in a single submission.
        self.submit(|enc| enc.copy_buffer_to_buffer(&src, 0, &dst, 0, size));
        self.wait()?;
        let started = std::time::Instant::now();
        self.submit(|enc| {
            for _ in 0..reps {
                enc.copy_buffer_to_buffer(&src, 0, &dst, 0, size);
            }
        });
        self.wait()?;
        Ok(2.0 * size as f64 * reps as f64 / started.elapsed().as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device error inside a scope comes back as `Rejected` (wgpu would panic otherwise),
    /// and the device keeps working afterwards.
    #[test]
    fn device_errors_in_a_scope_are_returned_not_panicked() {
        let gpu = Gpu::first().expect("a Vulkan adapter (lavapipe in CI)");
        let rejected = gpu.scoped("invalid buffer", || {
            gpu.create_invalid_buffer();
            Ok(64)
        });
        match rejected {
            Err(GpuError::Rejected { what, reason }) => {
                assert_eq!(what, "invalid buffer");
                assert!(!reason.is_empty());
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        let words = gpu.scoped("a valid round trip", || gpu.read(&gpu.storage("ok", &[1, 2, 3]), 3));
        assert_eq!(words.unwrap(), [1, 2, 3]);
    }
}
