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

/// Seeds the backend's random generator and runs `init` (which draws from it) as one step.
/// burn's generator is one per process: between another thread's `seed` and its draws, a
/// concurrent init (a parallel test, a second run in one process) would consume or reseed
/// it and the "seeded" values would differ from run to run. Every seeded draw goes through
/// here (or [`seeded_module`]) so that what is drawn depends on the seed alone.
pub fn seeded<B: burn::tensor::backend::Backend, T>(dev: &B::Device, seed: u64, init: impl FnOnce() -> T) -> T {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A panic inside another init leaves nothing that matters here: the next caller reseeds.
    let _held = RNG.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    B::seed(dev, seed);
    init()
}

/// [`seeded`] for a module: burn initialises parameters lazily, at their first use, which
/// would draw from the generator long after the lock is released; every parameter is
/// therefore materialised (in the module's declaration order) while it is held.
pub fn seeded_module<B: burn::tensor::backend::Backend, M: burn::module::Module<B>>(
    dev: &B::Device,
    seed: u64,
    init: impl FnOnce() -> M,
) -> M {
    struct Materialise;
    impl<B: burn::tensor::backend::Backend> burn::module::ModuleVisitor<B> for Materialise {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::tensor::Tensor<B, D>>) {
            let _ = p.val();
        }
    }
    seeded::<B, _>(dev, seed, || {
        let m = init();
        m.visit(&mut Materialise);
        m
    })
}
