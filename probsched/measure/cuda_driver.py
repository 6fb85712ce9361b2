"""The CUDA driver API as probsched uses it: whether it can run here, a device read into a
:class:`~probsched.target.cuda.CudaTarget`, and driver results turned into
:class:`~probsched.errors.MeasureError` (``cuda-bindings`` returns ``(CUresult, *values)``
from every call)."""

from __future__ import annotations

from ..errors import MeasureError
from ..target.cuda import CudaTarget

CONTEXT_LOST = "the CUDA context is lost"  # an error after which the worker is replaced

# Launch errors that leave the context unusable (the driver API's "sticky" errors).
_STICKY = {"CUDA_ERROR_ILLEGAL_ADDRESS", "CUDA_ERROR_LAUNCH_FAILED",
           "CUDA_ERROR_MISALIGNED_ADDRESS", "CUDA_ERROR_ILLEGAL_INSTRUCTION",
           "CUDA_ERROR_INVALID_ADDRESS_SPACE", "CUDA_ERROR_INVALID_PC",
           "CUDA_ERROR_HARDWARE_STACK_ERROR", "CUDA_ERROR_ASSERT",
           "CUDA_ERROR_LAUNCH_TIMEOUT", "CUDA_ERROR_ECC_UNCORRECTABLE"}


def unavailable() -> str | None:
    """Why CUDA kernels cannot run in this process (None when they can): the extra not
    installed, no driver, or no device."""
    try:
        from cuda.bindings import driver
    except ImportError:
        return "the cuda extra is not installed (pip install 'probsched[cuda]')"
    try:
        (err,) = driver.cuInit(0)
    except Exception as exc:  # the bindings raise when libcuda.so is missing
        return f"no CUDA driver: {str(exc).splitlines()[0][:200]}"
    if err != driver.CUresult.CUDA_SUCCESS:
        return f"no CUDA device: cuInit says {error_name(err)}"
    err, count = driver.cuDeviceGetCount()
    if err != driver.CUresult.CUDA_SUCCESS or count < 1:
        return "no CUDA device"
    return None


def device_target(ordinal: int = 0) -> CudaTarget:
    """The target of CUDA device ``ordinal`` (its compute capability, limits and size) as the
    driver reports them; a :class:`~probsched.errors.MeasureError` where there is none."""
    why = unavailable()
    if why is not None:
        raise MeasureError(f"cannot read a CUDA device: {why}")
    from cuda.bindings import driver

    dev = check(driver.cuDeviceGet(ordinal), "cuDeviceGet")
    A = driver.CUdevice_attribute

    def attr(name: str) -> int:
        return int(check(driver.cuDeviceGetAttribute(getattr(A, name), dev), name))

    major = attr("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR")
    minor = attr("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR")
    name = check(driver.cuDeviceGetName(256, dev), "cuDeviceGetName")
    name = name.split(b"\0", 1)[0].decode(errors="replace").strip()
    # The PTX ISA version LLVM emits: 8.0 is what sm_90 needs (the notes' spike used it).
    ptx = "+ptx80" if major >= 9 else "+ptx70"
    return CudaTarget(
        arch=f"sm_{major}{minor}", ptx_features=ptx, name=name,
        sm_count=attr("CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT"),
        warp_size=attr("CU_DEVICE_ATTRIBUTE_WARP_SIZE"),
        max_threads_per_block=attr("CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK"),
        max_block_dims=(attr("CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X"),
                        attr("CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y"),
                        attr("CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z")),
        max_grid_dims=(attr("CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X"),
                       attr("CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y"),
                       attr("CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z")),
        registers_per_block=attr("CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK"),
        registers_per_thread=255,
        shared_bytes_per_block=attr("CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK"),
        shared_bytes_optin=attr("CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN"),
        shared_bytes_per_sm=attr("CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR"),
        l2_bytes=attr("CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE"),
        clock_khz=attr("CU_DEVICE_ATTRIBUTE_CLOCK_RATE"),
    )


def check(result: tuple, what: str):
    """The value of a driver call's ``(CUresult, value)``, or an error naming ``what``."""
    from cuda.bindings import driver

    err, *values = result
    if err != driver.CUresult.CUDA_SUCCESS:
        raise_error(driver, err, what)
    return values[0] if len(values) == 1 else tuple(values)


def call(result: tuple, what: str) -> None:
    from cuda.bindings import driver

    err = result[0]
    if err != driver.CUresult.CUDA_SUCCESS:
        raise_error(driver, err, what)


def raise_error(driver, err, what: str):
    name = error_name(err)
    if name in _STICKY:  # the runner's worker is replaced after this
        raise MeasureError(f"{CONTEXT_LOST}: {what} failed with {name}")
    raise MeasureError(f"{what} failed with {name}")


def error_name(err) -> str:
    return getattr(err, "name", str(err))
