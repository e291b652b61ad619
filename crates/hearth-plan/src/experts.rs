//! A mixture-of-experts model's experts, from its GGUF header: how many
//! there are, how many each token uses, and the parameters and bytes one
//! token's forward pass reads.
//!
//! Routed experts are the tensors named `*_exps.*` (`ffn_gate_exps`,
//! `ffn_up_exps`, `ffn_down_exps`, `ffn_gate_up_exps`, their biases and
//! scales): `n_expert` slices, of which a token reads `n_expert_used`.
//! Everything else — attention, norms, shared experts (`*_shexp`), the
//! dense feed-forward of leading dense layers, the router — is read by
//! every token. All of the experts stay mapped and become resident as
//! different tokens choose different experts, so the plan's weights count
//! them all; the active parameters say what one token costs.

use hearth_gguf::GgufFile;
use serde::Serialize;

/// The experts of a mixture-of-experts model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Experts {
    /// Routed experts per MoE layer (`expert_count`).
    pub count: u64,
    /// Experts each token is routed to (`expert_used_count`).
    pub used: u64,
    /// Shared experts every token goes through (`expert_shared_count`).
    pub shared: u64,
    /// Parameters of the routed experts, all of them.
    pub expert_params: u64,
    /// Bytes of the routed experts' tensors.
    pub expert_bytes: u64,
    /// Parameters of the whole model.
    pub total_params: u64,
    /// Parameters one token's forward pass reads: all but the routed
    /// experts, plus `used / count` of them.
    pub active_params: u64,
    /// Bytes one token's forward pass reads, the same way.
    pub active_bytes: u64,
}

/// Whether `name` is a routed experts' tensor.
pub fn is_expert_tensor(name: &str) -> bool {
    name.split('.').any(|part| part.ends_with("_exps"))
}

/// The experts of `file`, or `None` for a model without routed experts
/// (no `{arch}.expert_count` above 0, or no `*_exps` tensor).
pub fn experts(file: &GgufFile) -> Option<Experts> {
    let arch = file.architecture().ok()?;
    let key = |k: &str| file.get(&format!("{arch}.{k}")).and_then(|v| v.as_u64());
    let count = key("expert_count").filter(|&c| c > 0)?;
    let used = key("expert_used_count").unwrap_or(0).min(count);
    let shared = key("expert_shared_count").unwrap_or(0);
    let (mut expert_params, mut expert_bytes) = (0u64, 0u64);
    let (mut total_params, mut total_bytes) = (0u64, 0u64);
    for t in file.tensors() {
        total_params = total_params.saturating_add(t.n_elements());
        total_bytes = total_bytes.saturating_add(t.size);
        if is_expert_tensor(&t.name) {
            expert_params = expert_params.saturating_add(t.n_elements());
            expert_bytes = expert_bytes.saturating_add(t.size);
        }
    }
    if expert_params == 0 {
        return None;
    }
    // used / count of the experts, rounded to the nearest unit.
    let share = |n: u64| ((n as u128 * used as u128 + count as u128 / 2) / count as u128) as u64;
    Some(Experts {
        count,
        used,
        shared,
        expert_params,
        expert_bytes,
        total_params,
        active_params: total_params - expert_params + share(expert_params),
        active_bytes: total_bytes - expert_bytes + share(expert_bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use hearth_gguf::{GgmlType, GgufWriter, Value};

    /// A header with 8 experts of which 2 are used: 3 expert tensors of 8
    /// slices of 4 × 32 F32, a shared expert and a router.
    fn moe_file(count: u32, used: u32) -> GgufFile {
        let mut w = GgufWriter::new();
        w.set("general.architecture", Value::String("qwen3moe".into()));
        w.set("qwen3moe.expert_count", Value::U32(count));
        w.set("qwen3moe.expert_used_count", Value::U32(used));
        w.set("qwen3moe.expert_shared_count", Value::U32(1));
        let mut add = |name: &str, dims: &[u64]| {
            let n: u64 = dims.iter().product();
            w.add_tensor(name, GgmlType::F32, dims, vec![0; 4 * n as usize])
                .unwrap();
        };
        for t in ["gate", "up", "down"] {
            add(&format!("blk.0.ffn_{t}_exps.weight"), &[32, 4, 8]);
            add(&format!("blk.0.ffn_{t}_shexp.weight"), &[32, 4]);
        }
        add("blk.0.ffn_gate_inp.weight", &[32, 8]);
        GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap()
    }

    #[test]
    fn routed_experts_count_by_share_the_rest_in_full() {
        let e = experts(&moe_file(8, 2)).expect("a MoE model");
        let routed = 3 * 32 * 4 * 8;
        let rest = 3 * 32 * 4 + 32 * 8;
        assert_eq!((e.count, e.used, e.shared), (8, 2, 1));
        assert_eq!(e.expert_params, routed);
        assert_eq!(e.expert_bytes, 4 * routed);
        assert_eq!(e.total_params, routed + rest);
        assert_eq!(e.active_params, rest + routed / 4);
        assert_eq!(e.active_bytes, 4 * (rest + routed / 4));
        // No experts: not a MoE model.
        assert_eq!(experts(&moe_file(0, 0)), None);
    }

    #[test]
    fn expert_tensor_names() {
        for n in [
            "blk.0.ffn_gate_exps.weight",
            "blk.3.ffn_up_exps.bias",
            "blk.1.ffn_down_exps.scale",
            "blk.1.ffn_gate_up_exps.weight",
        ] {
            assert!(is_expert_tensor(n), "{n}");
        }
        for n in [
            "blk.0.ffn_gate_shexp.weight",
            "blk.0.ffn_gate_inp.weight",
            "blk.0.ffn_down.weight",
            "blk.1.exp_probs_b.bias",
            "token_embd.weight",
        ] {
            assert!(!is_expert_tensor(n), "{n}");
        }
    }
}
