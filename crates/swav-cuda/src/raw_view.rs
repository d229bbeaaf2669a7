//! [`RawView`]: a typed view of device memory by raw address, for kernels that take
//! pointers (element-type conversion, mixed-type element-wise operations).

use crate::DType;

/// Device elements of one type, seen from a raw address: element `offset` onwards of the
/// buffer at `ptr`, whose elements are `dtype`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawView {
    /// The buffer's device address.
    pub(crate) ptr: u64,
    /// The buffer's element type.
    pub(crate) dtype: DType,
    /// Where the view starts, in elements.
    pub(crate) offset: usize,
}

impl RawView {
    /// Elements of `dtype` at `ptr`, from element `offset` on.
    pub(crate) fn new(ptr: u64, dtype: DType, offset: usize) -> Self {
        Self { ptr, dtype, offset }
    }
}
