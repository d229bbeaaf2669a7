//! A fully connected layer (`y = x·Wᵀ + b`), PyTorch's `nn.Linear`.

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use swav_core::ParamKind;

use super::tensors::{Entry, EntryMut, Layout, Param, Tensors};
use crate::init::Init;
use crate::{Backend, LinearShape};

/// One linear layer.
#[derive(Debug)]
pub(crate) struct Linear<Buf> {
    pub(crate) weight: Param<Buf>,
    pub(crate) bias: Option<Param<Buf>>,
    pub(crate) in_features: usize,
    pub(crate) out_features: usize,
}

impl<Buf> Linear<Buf> {
    /// PyTorch's default initialisation; names `{prefix}.weight` (and `{prefix}.bias`).
    pub(crate) fn new<B: Backend<Buf = Buf>>(
        b: &mut B,
        init: &mut Init,
        prefix: &str,
        in_features: usize,
        out_features: usize,
        with_bias: bool,
    ) -> Result<Self, B::Error> {
        let w = init.linear_uniform(out_features * in_features, in_features);
        let weight = Param::new(
            b,
            format!("{prefix}.weight"),
            vec![out_features, in_features],
            ParamKind::Weight,
            Layout::Plain,
            &w,
        )?;
        let bias = if with_bias {
            let v = init.linear_uniform(out_features, in_features);
            Some(Param::new(
                b,
                format!("{prefix}.bias"),
                vec![out_features],
                ParamKind::BiasOrNorm,
                Layout::Plain,
                &v,
            )?)
        } else {
            None
        };
        Ok(Self {
            weight,
            bias,
            in_features,
            out_features,
        })
    }

    /// The layer's geometry on `rows` rows.
    fn shape(&self, rows: usize) -> LinearShape {
        LinearShape {
            rows,
            in_features: self.in_features,
            out_features: self.out_features,
        }
    }

    /// `y = x·Wᵀ + b` for `rows` rows.
    pub(crate) fn forward<B: Backend<Buf = Buf>>(
        &self,
        b: &mut B,
        x: &Buf,
        rows: usize,
        y: &mut Buf,
    ) -> Result<(), B::Error> {
        b.linear_forward(
            x,
            &self.weight.value,
            self.bias.as_ref().map(|p| &p.value),
            &self.shape(rows),
            y,
        )
    }

    /// Accumulates the parameter gradients from `dy`; writes `dx` when asked.
    pub(crate) fn backward<B: Backend<Buf = Buf>>(
        &mut self,
        b: &mut B,
        dy: &Buf,
        x: &Buf,
        rows: usize,
        dx: Option<&mut Buf>,
    ) -> Result<(), B::Error> {
        let shape = self.shape(rows);
        b.linear_backward_weight(
            dy,
            x,
            &shape,
            &mut self.weight.grad,
            self.bias.as_mut().map(|p| &mut p.grad),
        )?;
        if let Some(dx) = dx {
            b.linear_backward_data(dy, &self.weight.value, &shape, dx)?;
        }
        Ok(())
    }
}

impl<Buf> Tensors<Buf> for Linear<Buf> {
    fn entries<'a>(&'a self, out: &mut Vec<Entry<'a, Buf>>) {
        out.push(Entry::Param(&self.weight));
        if let Some(b) = &self.bias {
            out.push(Entry::Param(b));
        }
    }

    fn entries_mut<'a>(&'a mut self, out: &mut Vec<EntryMut<'a, Buf>>) {
        out.push(EntryMut::Param(&mut self.weight));
        if let Some(b) = &mut self.bias {
            out.push(EntryMut::Param(b));
        }
    }
}
