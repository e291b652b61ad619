//! The GLM family.

use hearth_ops::RopeKind;

use super::Meta;
use crate::config::{Config, Norms};
use crate::ModelError;

/// GLM-4: norms around both blocks, fused gate-up. Its multi-section RoPE
/// (`rope.dimension_sections`) gives text tokens the same position in
/// every section, which is NeoX RoPE.
pub(super) fn glm4(meta: &Meta<'_>, c: &mut Config) -> Result<(), ModelError> {
    c.norms = Norms::SANDWICH;
    let sections = match meta.file.get(&meta.key("rope.dimension_sections")) {
        None => vec![],
        Some(v) => v
            .as_array()
            .ok_or_else(|| meta.bad("rope.dimension_sections", "not an array"))?
            .iter()
            .map(|x| x.as_i64().unwrap_or(0))
            .collect(),
    };
    let mrope = sections.len() >= 2 && sections[0] > 0 && sections[1] > 0;
    c.set_rope_kind(if mrope {
        RopeKind::Neox
    } else {
        RopeKind::Norm
    });
    Ok(())
}
