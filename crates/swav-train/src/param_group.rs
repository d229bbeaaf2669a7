//! The parameter groups of a SwAV network, as the optimiser and the diagnostics tell them
//! apart by name: the trunk, the projection head and the prototypes.

/// Whether a parameter is one of the prototypes (frozen during the first iterations).
pub fn is_prototype(name: &str) -> bool {
    name.contains("prototypes")
}

/// A parameter group of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamGroup {
    /// `conv1.*`, `layer*.*`, `bn1.*`.
    Trunk,
    /// `projection_head.*`.
    ProjectionHead,
    /// `prototypes.*`.
    Prototypes,
}

impl ParamGroup {
    /// The group of the parameter called `name`.
    pub fn of(name: &str) -> Self {
        if is_prototype(name) {
            Self::Prototypes
        } else if name.starts_with("projection_head") {
            Self::ProjectionHead
        } else {
            Self::Trunk
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_their_group() {
        assert_eq!(ParamGroup::of("layer1.0.conv1.weight"), ParamGroup::Trunk);
        assert_eq!(ParamGroup::of("bn1.bias"), ParamGroup::Trunk);
        assert_eq!(
            ParamGroup::of("projection_head.0.weight"),
            ParamGroup::ProjectionHead
        );
        assert_eq!(ParamGroup::of("prototypes.weight"), ParamGroup::Prototypes);
    }
}
