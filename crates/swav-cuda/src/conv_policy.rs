//! How cuDNN's convolution algorithms are chosen: [`ConvPolicy`], and the two environment
//! variables that set it at run time, so that one GPU visit can compare settings without a
//! rebuild:
//!
//! | variable | values | default |
//! |---|---|---|
//! | `SWAV_CUDNN_ALGOS` | `deterministic` (bit-identical results run to run), `fastest` (any algorithm) | `deterministic` |
//! | `SWAV_CUDNN_SEARCH` | `exhaustive` (time every candidate on the real operands), `heuristic` (cuDNN's first guess, nothing timed) | `exhaustive` |
//! | `SWAV_CUDNN_STEM` | `direct` (as it is), `padded` (under bf16, a convolution with fewer than 8 input channels, ResNet's stem, runs on input and weight padded with zero channels to 8) | `direct` |
//!
//! [`CudaBackend::new`](crate::CudaBackend::new) reads them; an unknown value is a one-line
//! [`CudaError::Setting`]. An explicit [`CudaConfig`](crate::CudaConfig) ignores them.

use crate::CudaError;

/// The variable choosing between deterministic-only and fastest algorithms.
pub const ALGOS_ENV: &str = "SWAV_CUDNN_ALGOS";
/// The variable choosing between an exhaustive (timed) and a heuristic search.
pub const SEARCH_ENV: &str = "SWAV_CUDNN_SEARCH";
/// The variable choosing whether a convolution of few input channels (the stem) is padded.
pub const STEM_ENV: &str = "SWAV_CUDNN_STEM";

/// How the algorithm of each convolution shape is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlgorithmSearch {
    /// Time every candidate once on the real operands and keep the fastest
    /// (`cudnnFind…AlgorithmEx`, PyTorch's `cudnn.benchmark = True`). The first step is
    /// slower; the default.
    #[default]
    Exhaustive,
    /// Take cuDNN's heuristic first choice (`cudnnGet…Algorithm_v7`); nothing is timed.
    Heuristic,
}

/// The constraints of the algorithm choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvPolicy {
    /// Exhaustive or heuristic.
    pub search: AlgorithmSearch,
    /// Only algorithms whose results are bit-identical from run to run (cuDNN's
    /// `CUDNN_DETERMINISTIC`). On by default: the backend promises deterministic results.
    /// A shape with no qualifying deterministic algorithm (in f32 or bf16) takes the best
    /// other one, with a note on stderr.
    pub deterministic: bool,
    /// The largest workspace one convolution may use, in bytes.
    pub workspace_limit: usize,
    /// Under bf16, run a convolution with fewer than 8 input channels (ResNet's 3-channel
    /// stem) as an 8-channel one on input and weight padded with zeros (the same result), in
    /// case cuDNN has tensor-core kernels only for channel counts that are multiples of 8.
    /// Off by default: whether it pays is measured on a GPU (`swav-gpu-probe`'s stem line).
    pub pad_stem: bool,
}

impl Default for ConvPolicy {
    fn default() -> Self {
        Self {
            search: AlgorithmSearch::Exhaustive,
            deterministic: true,
            workspace_limit: 1 << 30,
            pad_stem: false,
        }
    }
}

impl ConvPolicy {
    /// The default policy with `SWAV_CUDNN_ALGOS`, `SWAV_CUDNN_SEARCH` and `SWAV_CUDNN_STEM`
    /// applied.
    pub fn from_env() -> Result<Self, CudaError> {
        let var = |name| std::env::var(name).ok();
        Self::from_values(
            var(ALGOS_ENV).as_deref(),
            var(SEARCH_ENV).as_deref(),
            var(STEM_ENV).as_deref(),
        )
    }

    /// The default policy with the given values of `SWAV_CUDNN_ALGOS`, `SWAV_CUDNN_SEARCH`
    /// and `SWAV_CUDNN_STEM` (`None`: unset).
    pub fn from_values(
        algos: Option<&str>,
        search: Option<&str>,
        stem: Option<&str>,
    ) -> Result<Self, CudaError> {
        let mut policy = Self::default();
        if let Some(value) = algos {
            policy.deterministic = match value {
                "deterministic" => true,
                "fastest" => false,
                _ => return Err(setting(ALGOS_ENV, value, "deterministic, fastest")),
            };
        }
        if let Some(value) = search {
            policy.search = match value {
                "exhaustive" => AlgorithmSearch::Exhaustive,
                "heuristic" => AlgorithmSearch::Heuristic,
                _ => return Err(setting(SEARCH_ENV, value, "exhaustive, heuristic")),
            };
        }
        if let Some(value) = stem {
            policy.pad_stem = match value {
                "direct" => false,
                "padded" => true,
                _ => return Err(setting(STEM_ENV, value, "direct, padded")),
            };
        }
        Ok(policy)
    }
}

fn setting(variable: &'static str, value: &str, expected: &'static str) -> CudaError {
    CudaError::Setting {
        variable,
        value: value.to_string(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_give_the_default() {
        assert_eq!(
            ConvPolicy::from_values(None, None, None).unwrap(),
            ConvPolicy::default()
        );
    }

    #[test]
    fn each_value_sets_its_field() {
        let p =
            ConvPolicy::from_values(Some("fastest"), Some("heuristic"), Some("padded")).unwrap();
        assert!(!p.deterministic && p.pad_stem);
        assert_eq!(p.search, AlgorithmSearch::Heuristic);
        let p = ConvPolicy::from_values(Some("deterministic"), Some("exhaustive"), Some("direct"))
            .unwrap();
        assert!(p.deterministic && !p.pad_stem);
        assert_eq!(p.search, AlgorithmSearch::Exhaustive);
    }

    #[test]
    fn an_unknown_value_is_a_one_line_error_naming_the_variable() {
        for (algos, search, stem, variable) in [
            (Some("fast"), None, None, ALGOS_ENV),
            (None, Some("Heuristic"), None, SEARCH_ENV),
            (None, None, Some("pad8"), STEM_ENV),
        ] {
            let line = ConvPolicy::from_values(algos, search, stem)
                .expect_err("an unknown value was accepted")
                .to_string();
            assert!(line.starts_with(variable), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
