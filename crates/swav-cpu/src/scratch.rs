//! Per-thread scratch memory for the kernels' tiles, reused from call to call.

use std::cell::RefCell;

thread_local! {
    static TILE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch tile of at least `len` elements (contents
/// unspecified). The buffer grows on demand and is kept for the next call, so the hot
/// loops allocate nothing once warm. Not re-entrant.
pub(crate) fn with_tile<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    TILE.with(|cell| {
        let mut buf = cell.borrow_mut();
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        f(&mut buf[..len])
    })
}
