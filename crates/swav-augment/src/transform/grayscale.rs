//! PIL's `convert("L")`: ITU-R 601-2 luma in 16-bit fixed point, rounded.
//!
//! Pillow computes `L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16`; the weights are
//! 0.299, 0.587 and 0.114 scaled by 2^16 (they sum to exactly 65536). torchvision's
//! `RandomGrayscale` on a PIL image is this conversion replicated into three channels.

/// PIL's luma of one RGB pixel.
#[inline]
pub fn pil_luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
}

/// Replaces every pixel of an interleaved RGB buffer by its PIL luma in all three channels.
pub fn grayscale_in_place(pixels: &mut [u8]) {
    for px in pixels.chunks_exact_mut(3) {
        let l = pil_luma(px[0], px[1], px[2]);
        px.fill(l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_of_primaries_and_extremes() {
        assert_eq!(pil_luma(0, 0, 0), 0);
        assert_eq!(pil_luma(255, 255, 255), 255);
        // 0.299 * 255 = 76.2, 0.587 * 255 = 149.7, 0.114 * 255 = 29.1.
        assert_eq!(pil_luma(255, 0, 0), 76);
        assert_eq!(pil_luma(0, 255, 0), 150);
        assert_eq!(pil_luma(0, 0, 255), 29);
    }

    #[test]
    fn grayscale_replicates_luma() {
        let mut px = [10, 200, 30, 255, 255, 255];
        grayscale_in_place(&mut px);
        let l = pil_luma(10, 200, 30);
        assert_eq!(px, [l, l, l, 255, 255, 255]);
    }
}
