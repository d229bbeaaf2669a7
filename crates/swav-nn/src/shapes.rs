//! The geometry of the device operations: convolutions, pooling, batch norm, linear layers
//! and row normalisation, each as one value passed instead of loose integers.

/// The geometry of one square-kernel 2-d convolution (groups 1, no dilation, no bias).
///
/// The input is NHWC `[batch, in_height, in_width, in_channels]`, the weight OHWI
/// `[out_channels, kernel, kernel, in_channels]` and the output NHWC
/// `[batch, out_height(), out_width(), out_channels]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_height: usize,
    /// Input width.
    pub in_width: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
}

impl Conv2dShape {
    /// Output height: `(in_height + 2·padding - kernel) / stride + 1`.
    pub fn out_height(&self) -> usize {
        (self.in_height + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output width: `(in_width + 2·padding - kernel) / stride + 1`.
    pub fn out_width(&self) -> usize {
        (self.in_width + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_height * self.in_width * self.in_channels
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_height() * self.out_width() * self.out_channels
    }

    /// Elements of the weight tensor.
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.kernel * self.kernel * self.in_channels
    }

    /// Output pixels over the whole batch: the rows of the output seen as a matrix.
    pub fn output_pixels(&self) -> usize {
        self.batch * self.out_height() * self.out_width()
    }

    /// The length of one im2col row: `kernel · kernel · in_channels`.
    pub fn patch_len(&self) -> usize {
        self.kernel * self.kernel * self.in_channels
    }

    /// Multiply-accumulates of the forward pass (the same count for each backward pass).
    pub fn macs(&self) -> usize {
        self.output_pixels() * self.patch_len() * self.out_channels
    }
}

/// The geometry of a square-window 2-d max pooling over an NHWC tensor (windows that fall
/// partly into the padding only see their valid pixels, as in PyTorch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dShape {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub in_height: usize,
    /// Input width.
    pub in_width: usize,
    /// Channels (unchanged by pooling).
    pub channels: usize,
    /// Window height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Implicit padding on every side (padded pixels never win the maximum).
    pub padding: usize,
}

impl Pool2dShape {
    /// Output height: `(in_height + 2·padding - kernel) / stride + 1`.
    pub fn out_height(&self) -> usize {
        (self.in_height + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output width: `(in_width + 2·padding - kernel) / stride + 1`.
    pub fn out_width(&self) -> usize {
        (self.in_width + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.batch * self.in_height * self.in_width * self.channels
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.batch * self.out_height() * self.out_width() * self.channels
    }
}

/// The geometry of a batch norm over a `rows × channels` matrix (an NHWC activation with
/// `rows = batch·height·width`, or the head's `batch × features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchNormShape {
    /// Rows (samples, or pixels over the batch) normalised together.
    pub rows: usize,
    /// Channels, each with its own statistics.
    pub channels: usize,
}

/// The geometry of a global average pooling: `batch` images of `pixels` NHWC pixels with
/// `channels` channels, averaged to `batch × channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlobalPoolShape {
    /// Images in the batch.
    pub batch: usize,
    /// Pixels per image (`height · width`).
    pub pixels: usize,
    /// Channels.
    pub channels: usize,
}

impl GlobalPoolShape {
    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.batch * self.pixels * self.channels
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.batch * self.channels
    }
}

/// The geometry of a linear layer: `rows × in_features` inputs, `out_features × in_features`
/// weights, `rows × out_features` outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinearShape {
    /// Rows of the input (samples).
    pub rows: usize,
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
}

impl LinearShape {
    /// Multiply-accumulates of the forward pass (the same count for each backward product).
    pub fn macs(&self) -> usize {
        self.rows * self.in_features * self.out_features
    }
}

/// A row-wise L2 normalisation of a `rows × cols` matrix, with the norm floor `eps` of
/// PyTorch's `F.normalize` (forward and backward must agree on it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct L2NormalizeShape {
    /// Rows, each normalised on its own.
    pub rows: usize,
    /// Values per row.
    pub cols: usize,
    /// The smallest norm divided by.
    pub eps: f32,
}
