//! Named model tensors: trainable parameters (value + gradient), running statistics and
//! batch counters, and the views through which the optimiser, checkpoints and the gradient
//! all-reduce reach them in torchvision `state_dict` order.

use alloc::string::String;
use alloc::vec::Vec;

use swav_core::ParamKind;

use crate::Backend;

/// How a tensor is stored on the device relative to its PyTorch layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The PyTorch layout, row-major (vectors, linear weights `[out, in]`).
    Plain,
    /// A convolution weight stored OHWI; PyTorch's is OIHW.
    Ohwi,
}

/// A trainable tensor: its value and its accumulated gradient.
#[derive(Debug)]
pub struct Param<Buf> {
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) kind: ParamKind,
    pub(crate) layout: Layout,
    pub(crate) value: Buf,
    pub(crate) grad: Buf,
    /// Its position in the model's `params()`, set once the model is built.
    pub(crate) index: usize,
}

impl<Buf> Param<Buf> {
    /// A parameter with the given host values (device layout), and a zero gradient.
    pub(crate) fn new<B: Backend<Buf = Buf>>(
        b: &mut B,
        name: String,
        shape: Vec<usize>,
        kind: ParamKind,
        layout: Layout,
        values: &[f32],
    ) -> Result<Self, B::Error> {
        let mut value = b.zeros(values.len())?;
        b.upload(values, &mut value, 0)?;
        let grad = b.zeros(values.len())?;
        Ok(Self {
            name,
            shape,
            kind,
            layout,
            value,
            grad,
            index: 0,
        })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A non-trainable statistic (batch norm's running mean or variance).
#[derive(Debug)]
pub struct Stat<Buf> {
    pub(crate) name: String,
    pub(crate) len: usize,
    pub(crate) value: Buf,
}

/// Batch norm's `num_batches_tracked`: training forward passes seen (host-side; stored as
/// an `int64` scalar in checkpoints).
#[derive(Debug)]
pub struct Counter {
    pub(crate) name: String,
    pub(crate) value: u64,
}

/// Read access to one parameter.
#[derive(Debug)]
pub struct ParamView<'a, Buf> {
    /// The torchvision / SwAV name, e.g. `layer1.0.conv1.weight`.
    pub name: &'a str,
    /// The logical PyTorch shape (OIHW for convolution weights).
    pub shape: &'a [usize],
    /// Weight, or bias / normalisation parameter.
    pub kind: ParamKind,
    /// The device layout (convolution weights are OHWI).
    pub layout: Layout,
    /// The value.
    pub value: &'a Buf,
    /// The accumulated gradient.
    pub grad: &'a Buf,
}

/// Write access to one parameter.
#[derive(Debug)]
pub struct ParamMut<'a, Buf> {
    /// The torchvision / SwAV name, e.g. `layer1.0.conv1.weight`.
    pub name: &'a str,
    /// The logical PyTorch shape (OIHW for convolution weights).
    pub shape: &'a [usize],
    /// Weight, or bias / normalisation parameter.
    pub kind: ParamKind,
    /// The device layout (convolution weights are OHWI).
    pub layout: Layout,
    /// The value.
    pub value: &'a mut Buf,
    /// The accumulated gradient.
    pub grad: &'a mut Buf,
}

/// Read access to one non-trainable buffer.
#[derive(Debug)]
pub enum BufferView<'a, Buf> {
    /// A running mean or variance of `len` channels.
    RunningStat {
        /// The torchvision name, e.g. `bn1.running_mean`.
        name: &'a str,
        /// Channels.
        len: usize,
        /// The value.
        value: &'a Buf,
    },
    /// A batch counter (`num_batches_tracked`).
    BatchCount {
        /// The torchvision name, e.g. `bn1.num_batches_tracked`.
        name: &'a str,
        /// The count.
        value: u64,
    },
}

/// Write access to one non-trainable buffer.
#[derive(Debug)]
pub enum BufferMut<'a, Buf> {
    /// A running mean or variance of `len` channels.
    RunningStat {
        /// The torchvision name, e.g. `bn1.running_mean`.
        name: &'a str,
        /// Channels.
        len: usize,
        /// The value.
        value: &'a mut Buf,
    },
    /// A batch counter (`num_batches_tracked`).
    BatchCount {
        /// The torchvision name, e.g. `bn1.num_batches_tracked`.
        name: &'a str,
        /// The count.
        value: &'a mut u64,
    },
}

/// One entry of the state dict, shared.
pub(crate) enum Entry<'a, Buf> {
    Param(&'a Param<Buf>),
    Stat(&'a Stat<Buf>),
    Counter(&'a Counter),
}

/// One entry of the state dict, exclusive.
pub(crate) enum EntryMut<'a, Buf> {
    Param(&'a mut Param<Buf>),
    Stat(&'a mut Stat<Buf>),
    Counter(&'a mut Counter),
}

/// A part of the model that owns state-dict entries, listed in torchvision order.
pub(crate) trait Tensors<Buf> {
    /// Appends this part's entries.
    fn entries<'a>(&'a self, out: &mut Vec<Entry<'a, Buf>>);
    /// Appends this part's entries, mutably.
    fn entries_mut<'a>(&'a mut self, out: &mut Vec<EntryMut<'a, Buf>>);
}

impl<'a, Buf> Entry<'a, Buf> {
    /// The state-dict key.
    pub(crate) fn name(&self) -> &'a str {
        match self {
            Self::Param(p) => &p.name,
            Self::Stat(s) => &s.name,
            Self::Counter(c) => &c.name,
        }
    }
}

impl<'a, Buf> From<&'a Param<Buf>> for ParamView<'a, Buf> {
    fn from(p: &'a Param<Buf>) -> Self {
        ParamView {
            name: &p.name,
            shape: &p.shape,
            kind: p.kind,
            layout: p.layout,
            value: &p.value,
            grad: &p.grad,
        }
    }
}

impl<'a, Buf> From<&'a mut Param<Buf>> for ParamMut<'a, Buf> {
    fn from(p: &'a mut Param<Buf>) -> Self {
        ParamMut {
            name: &p.name,
            shape: &p.shape,
            kind: p.kind,
            layout: p.layout,
            value: &mut p.value,
            grad: &mut p.grad,
        }
    }
}
