//! Model weights as safetensors bytes, with PyTorch names and layouts: convolution weights
//! are converted between the device's OHWI and PyTorch's OIHW here, and only here.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::WeightsError;
use super::options::{ExportOptions, ImportOptions, matches_any};
use crate::layout::{ohwi_from_oihw, oihw_from_ohwi};
use crate::model::{Entry, EntryMut, Layout};
use crate::{Backend, SwavModel};

/// What an import loaded and skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Model keys loaded from the file.
    pub loaded: usize,
    /// File keys skipped by [`ImportOptions::ignore`].
    pub ignored: Vec<String>,
    /// Model keys absent from the file and allowed to be.
    pub missing: Vec<String>,
}

/// Whether a key belongs to the trunk (not the head, not the prototypes).
fn is_trunk(key: &str) -> bool {
    !(key.starts_with("projection_head") || key.starts_with("prototypes"))
}

/// The PyTorch shape and dtype of a state-dict entry.
fn signature<Buf>(entry: &Entry<'_, Buf>) -> (Vec<usize>, Dtype) {
    match entry {
        Entry::Param(p) => (p.shape.clone(), Dtype::F32),
        Entry::Stat(s) => (alloc::vec![s.len], Dtype::F32),
        Entry::Counter(_) => (Vec::new(), Dtype::I64),
    }
}

fn f32_from_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Loads weights from safetensors `bytes` (PyTorch names, OIHW convolutions) into `model`.
///
/// Every key, shape and element type is checked before anything is written, so a failed
/// import leaves the model unchanged: model keys missing from the file (unless allowed),
/// file keys the model lacks (unless ignored), and mismatched shapes are errors naming
/// the keys. Batch counters (`num_batches_tracked`) are `I64` scalars, everything else
/// `F32`.
pub fn import_safetensors<B: Backend>(
    model: &mut SwavModel<B>,
    b: &mut B,
    bytes: &[u8],
    options: &ImportOptions,
) -> Result<ImportReport, WeightsError<B::Error>> {
    let file = SafeTensors::deserialize(bytes).map_err(WeightsError::Format)?;
    let strip = |k: &str| -> String {
        match &options.strip_prefix {
            Some(p) => k.strip_prefix(p.as_str()).unwrap_or(k).to_owned(),
            None => k.to_owned(),
        }
    };
    let mut report = ImportReport::default();
    // File key (as the model spells it) → the file's own key.
    let mut by_model_key: Vec<(String, String)> = Vec::new();
    for key in file.names() {
        let model_key = strip(key);
        if matches_any(&options.ignore, &model_key) {
            report.ignored.push(key.to_owned());
        } else {
            by_model_key.push((model_key, key.to_owned()));
        }
    }
    by_model_key.sort();
    report.ignored.sort();
    let lookup = |k: &str| -> Option<&str> {
        by_model_key
            .binary_search_by(|(m, _)| m.as_str().cmp(k))
            .ok()
            .map(|i| by_model_key[i].1.as_str())
    };

    // Check everything first.
    let entries = model.entries();
    let mut missing = Vec::new();
    let mut plan: Vec<Option<TensorView<'_>>> = Vec::with_capacity(entries.len());
    for entry in &entries {
        let key = entry.name();
        let Some(file_key) = lookup(key) else {
            if matches_any(&options.allow_missing, key) {
                report.missing.push(key.to_owned());
            } else {
                missing.push(key.to_owned());
            }
            plan.push(None);
            continue;
        };
        let view = file.tensor(file_key).map_err(WeightsError::Format)?;
        let (shape, dtype) = signature(entry);
        if view.dtype() != dtype {
            return Err(WeightsError::DtypeMismatch {
                key: key.to_owned(),
                expected: dtype,
                found: view.dtype(),
            });
        }
        // A batch counter may come as a 0-d or a one-element tensor.
        let counter_ok = dtype == Dtype::I64 && view.shape().iter().product::<usize>() == 1;
        if view.shape() != shape.as_slice() && !counter_ok {
            return Err(WeightsError::ShapeMismatch {
                key: key.to_owned(),
                expected: shape,
                found: view.shape().to_vec(),
            });
        }
        plan.push(Some(view));
    }
    if !missing.is_empty() {
        return Err(WeightsError::MissingKeys(missing));
    }
    let known: Vec<&str> = entries.iter().map(|e| e.name()).collect();
    let mut unexpected: Vec<String> = by_model_key
        .iter()
        .filter(|(m, _)| !known.contains(&m.as_str()))
        .map(|(_, k)| k.clone())
        .collect();
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(WeightsError::UnexpectedKeys(unexpected));
    }
    drop(entries);

    // Then write.
    for (entry, view) in model.entries_mut().into_iter().zip(plan) {
        let Some(view) = view else { continue };
        let data = view.data();
        match entry {
            EntryMut::Param(p) => {
                let mut values = f32_from_le(data);
                if p.layout == Layout::Ohwi {
                    let s = &p.shape;
                    values = ohwi_from_oihw(&values, s[0], s[1], s[2]);
                }
                b.upload(&values, &mut p.value, 0)
                    .map_err(WeightsError::Device)?;
            }
            EntryMut::Stat(s) => {
                b.upload(&f32_from_le(data), &mut s.value, 0)
                    .map_err(WeightsError::Device)?;
            }
            EntryMut::Counter(c) => {
                let v = i64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
                c.value = v.max(0) as u64;
            }
        }
        report.loaded += 1;
    }
    Ok(report)
}

/// Writes the model's weights as safetensors bytes with PyTorch names and layouts
/// (loadable into torchvision / the official SwAV model with strict key checking).
pub fn export_safetensors<B: Backend>(
    model: &SwavModel<B>,
    b: &mut B,
    options: &ExportOptions,
) -> Result<Vec<u8>, WeightsError<B::Error>> {
    let prefix = options.prefix.as_deref().unwrap_or("");
    let mut tensors: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = Vec::new();
    for entry in model.entries() {
        let key = entry.name();
        if options.trunk_only && !is_trunk(key) {
            continue;
        }
        let (shape, dtype) = signature(&entry);
        let bytes = match entry {
            Entry::Param(p) => {
                let mut values = alloc::vec![0.0f32; p.len()];
                b.download(&p.value, 0, &mut values)
                    .map_err(WeightsError::Device)?;
                if p.layout == Layout::Ohwi {
                    let s = &p.shape;
                    values = oihw_from_ohwi(&values, s[0], s[1], s[2]);
                }
                values.iter().flat_map(|v| v.to_le_bytes()).collect()
            }
            Entry::Stat(s) => {
                let mut values = alloc::vec![0.0f32; s.len];
                b.download(&s.value, 0, &mut values)
                    .map_err(WeightsError::Device)?;
                values.iter().flat_map(|v| v.to_le_bytes()).collect()
            }
            Entry::Counter(c) => (c.value as i64).to_le_bytes().to_vec(),
        };
        tensors.push((alloc::format!("{prefix}{key}"), shape, dtype, bytes));
    }
    let views = tensors
        .iter()
        .map(|(name, shape, dtype, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.as_str(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(WeightsError::Format)?;
    safetensors::serialize(views, None).map_err(WeightsError::Format)
}
