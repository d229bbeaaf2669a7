//! Convolution weight layouts: PyTorch's OIHW and the device's OHWI.

use alloc::vec;
use alloc::vec::Vec;

/// OIHW `[out, in, k, k]` → OHWI `[out, k, k, in]`.
pub fn ohwi_from_oihw(src: &[f32], out: usize, inp: usize, k: usize) -> Vec<f32> {
    assert_eq!(src.len(), out * inp * k * k, "conv weight length");
    let mut dst = vec![0.0; src.len()];
    for o in 0..out {
        for i in 0..inp {
            for t in 0..k * k {
                dst[(o * k * k + t) * inp + i] = src[(o * inp + i) * k * k + t];
            }
        }
    }
    dst
}

/// OHWI `[out, k, k, in]` → OIHW `[out, in, k, k]`.
pub fn oihw_from_ohwi(src: &[f32], out: usize, inp: usize, k: usize) -> Vec<f32> {
    assert_eq!(src.len(), out * inp * k * k, "conv weight length");
    let mut dst = vec![0.0; src.len()];
    for o in 0..out {
        for i in 0..inp {
            for t in 0..k * k {
                dst[(o * inp + i) * k * k + t] = src[(o * k * k + t) * inp + i];
            }
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip_and_place_elements() {
        let (o, i, k) = (2, 3, 2);
        let oihw: Vec<f32> = (0..o * i * k * k).map(|v| v as f32).collect();
        let ohwi = ohwi_from_oihw(&oihw, o, i, k);
        // [o=1, i=2, kh=1, kw=0]: OIHW index ((1·3 + 2)·2 + 1)·2 = 22, OHWI ((1·2 + 1)·2)·3 + 2 = 20.
        assert_eq!(ohwi[20], 22.0);
        assert_eq!(oihw_from_ohwi(&ohwi, o, i, k), oihw);
    }
}
