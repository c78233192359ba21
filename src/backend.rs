//! Backend choice. The CPU backend (burn `flex`) is always compiled; `cuda` only with the
//! `cuda` cargo feature (it adds minutes to every rebuild). burn 0.21 panics deep inside
//! cudarc when no driver is present, so `cuda_available` probes with a tiny op under
//! `catch_unwind` (panic hook silenced) and callers turn a `false` into a clear message.

/// The training backend on the CPU.
pub type Cpu = burn::backend::Autodiff<burn::backend::Flex>;

#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Autodiff<burn::backend::Cuda>;

/// True if a CUDA device can be initialised (always false without the `cuda` feature).
pub fn cuda_available() -> bool {
    #[cfg(feature = "cuda")]
    {
        use burn::prelude::*;
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let ok = std::panic::catch_unwind(|| {
            let dev = burn::backend::cuda::CudaDevice { index: 0 };
            let t = Tensor::<burn::backend::Cuda, 1>::ones([4], &dev);
            t.sum().into_scalar().elem::<f32>()
        })
        .is_ok();
        std::panic::set_hook(prev);
        ok
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}

/// Why the cuda backend cannot be used here, or None if it can.
pub fn cuda_problem() -> Option<String> {
    if !cfg!(feature = "cuda") {
        return Some("the cuda backend was asked for but this binary was built without the `cuda` feature (rebuild with `cargo build --release --features cuda`)".into());
    }
    if !cuda_available() {
        return Some("the cuda backend was asked for but no CUDA driver/device was found (libcuda could not be loaded or no GPU is visible)".into());
    }
    None
}
