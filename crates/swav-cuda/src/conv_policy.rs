//! How cuDNN's convolution algorithms are chosen: [`ConvPolicy`], and the two environment
//! variables that set it at run time, so that one GPU visit can compare settings without a
//! rebuild:
//!
//! | variable | values | default |
//! |---|---|---|
//! | `SWAV_CUDNN_ALGOS` | `deterministic` (bit-identical results run to run), `fastest` (any algorithm) | `deterministic` |
//! | `SWAV_CUDNN_SEARCH` | `exhaustive` (time every candidate on the real operands), `heuristic` (cuDNN's first guess, nothing timed) | `exhaustive` |
//!
//! [`CudaBackend::new`](crate::CudaBackend::new) reads them; an unknown value is a one-line
//! [`CudaError::Setting`]. An explicit [`CudaConfig`](crate::CudaConfig) ignores them.

use crate::CudaError;

/// The variable choosing between deterministic-only and fastest algorithms.
pub const ALGOS_ENV: &str = "SWAV_CUDNN_ALGOS";
/// The variable choosing between an exhaustive (timed) and a heuristic search.
pub const SEARCH_ENV: &str = "SWAV_CUDNN_SEARCH";

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
    /// In f32, a shape with no qualifying deterministic algorithm takes the best other one,
    /// with a note on stderr.
    pub deterministic: bool,
    /// The largest workspace one convolution may use, in bytes.
    pub workspace_limit: usize,
}

impl Default for ConvPolicy {
    fn default() -> Self {
        Self {
            search: AlgorithmSearch::Exhaustive,
            deterministic: true,
            workspace_limit: 1 << 30,
        }
    }
}

impl ConvPolicy {
    /// The default policy with `SWAV_CUDNN_ALGOS` and `SWAV_CUDNN_SEARCH` applied.
    pub fn from_env() -> Result<Self, CudaError> {
        Self::from_values(
            std::env::var(ALGOS_ENV).ok().as_deref(),
            std::env::var(SEARCH_ENV).ok().as_deref(),
        )
    }

    /// The default policy with the given values of `SWAV_CUDNN_ALGOS` and
    /// `SWAV_CUDNN_SEARCH` (`None`: unset).
    pub fn from_values(algos: Option<&str>, search: Option<&str>) -> Result<Self, CudaError> {
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
            ConvPolicy::from_values(None, None).unwrap(),
            ConvPolicy::default()
        );
    }

    #[test]
    fn each_value_sets_its_field() {
        let p = ConvPolicy::from_values(Some("fastest"), Some("heuristic")).unwrap();
        assert!(!p.deterministic);
        assert_eq!(p.search, AlgorithmSearch::Heuristic);
        let p = ConvPolicy::from_values(Some("deterministic"), Some("exhaustive")).unwrap();
        assert!(p.deterministic);
        assert_eq!(p.search, AlgorithmSearch::Exhaustive);
    }

    #[test]
    fn an_unknown_value_is_a_one_line_error_naming_the_variable() {
        for (algos, search, variable) in [
            (Some("fast"), None, ALGOS_ENV),
            (None, Some("Heuristic"), SEARCH_ENV),
        ] {
            let line = ConvPolicy::from_values(algos, search)
                .expect_err("an unknown value was accepted")
                .to_string();
            assert!(line.starts_with(variable), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
