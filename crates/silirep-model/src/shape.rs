//! Decoder-only transformer shapes: the architecture numbers every workload formula starts
//! from, four presets, a reader for Hugging Face `config.json` files, and the parameter count.
//!
//! The architecture is the Llama family's (Llama, Mistral, Mixtral): pre-norm decoder layers
//! with grouped-query attention, RMSNorm (one weight vector per norm, no bias), no bias on any
//! linear layer, an FFN that is either gated (SwiGLU: gate, up, down) or a plain two-matrix MLP,
//! and optionally a mixture of experts (a router plus `experts` FFNs per layer, `experts_per_token`
//! of them used by each token). Shapes outside this family are rejected when read from a
//! config rather than counted wrongly.

use crate::error::ModelError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use silirep_core::Dtype;

/// Feed-forward block of one expert (or of the layer, for a dense model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FfnKind {
    /// Gated (SwiGLU, GeGLU): gate and up projections hidden→ffn, down projection ffn→hidden;
    /// 3·hidden·ffn weights.
    Gated,
    /// Plain MLP: up hidden→ffn, down ffn→hidden; 2·hidden·ffn weights.
    Plain,
}

impl FfnKind {
    /// Weight matrices of hidden×ffn size in one FFN.
    pub fn matrices(self) -> u64 {
        match self {
            FfnKind::Gated => 3,
            FfnKind::Plain => 2,
        }
    }
}

/// Element types a deployment uses: stored weights, the KV cache, and the arithmetic (which
/// selects the compute roof and sets the size of activations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dtypes {
    /// Stored weights (q4 for a 4-bit quantised model).
    pub weight: Dtype,
    /// Keys and values in the cache.
    pub kv: Dtype,
    /// Matrix arithmetic and activations between layers.
    pub compute: Dtype,
}

impl Dtypes {
    /// One type for weights, cache and arithmetic (an f16 or bf16 model run as stored).
    pub fn uniform(dtype: Dtype) -> Dtypes {
        Dtypes {
            weight: dtype,
            kv: dtype,
            compute: dtype,
        }
    }
}

/// A decoder-only transformer's architecture plus the element types it is run with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelShape {
    /// Name shown in reports, e.g. `Mistral-7B`.
    pub name: String,
    /// Decoder layers.
    pub layers: u64,
    /// Model (residual stream) width.
    pub hidden: u64,
    /// Query heads.
    pub heads: u64,
    /// Key/value heads (grouped-query attention; equal to `heads` for multi-head attention).
    pub kv_heads: u64,
    /// Width of one head.
    pub head_dim: u64,
    /// Inner width of one FFN (of one expert, for a mixture of experts).
    pub ffn_hidden: u64,
    /// Gated or plain FFN.
    pub ffn_kind: FfnKind,
    /// FFNs per layer: 1 for a dense model.
    pub experts: u64,
    /// FFNs each token passes through: 1 for a dense model.
    pub experts_per_token: u64,
    /// Vocabulary size.
    pub vocab: u64,
    /// Whether the output projection reuses the input embedding matrix.
    pub tied_embeddings: bool,
    /// Element types.
    pub dtypes: Dtypes,
}

/// Where a shape's parameters sit. Every field counts parameters (elements), not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterCount {
    /// Input embedding: vocab·hidden.
    pub embedding: u64,
    /// Output projection: vocab·hidden, or 0 when tied to the embedding.
    pub lm_head: u64,
    /// Q, K, V, O over all layers.
    pub attention: u64,
    /// Every expert's FFN over all layers.
    pub ffn: u64,
    /// Routers over all layers: hidden·experts per layer, 0 for a dense model.
    pub router: u64,
    /// RMSNorm weights: two per layer and the final one, hidden each.
    pub norms: u64,
    /// Sum of the above.
    pub total: u64,
    /// Weights multiplied with each token's activations in one forward pass, output
    /// projection included: attention, router, `experts_per_token` FFNs per layer, and the
    /// vocab·hidden output projection (the embedding lookup is a gather, not a matmul).
    pub matmul_per_token: u64,
}

impl ModelShape {
    /// Mistral-7B v0.1: 32 layers, hidden 4096, 32 query / 8 KV heads of 128, SwiGLU 14336,
    /// vocab 32000, untied; f16.
    pub fn mistral_7b() -> ModelShape {
        ModelShape {
            name: "Mistral-7B".into(),
            layers: 32,
            hidden: 4096,
            heads: 32,
            kv_heads: 8,
            head_dim: 128,
            ffn_hidden: 14336,
            ffn_kind: FfnKind::Gated,
            experts: 1,
            experts_per_token: 1,
            vocab: 32000,
            tied_embeddings: false,
            dtypes: Dtypes::uniform(Dtype::F16),
        }
    }

    /// Llama-3-8B: Mistral-7B's layers with a 128,256-token vocabulary; f16.
    pub fn llama_3_8b() -> ModelShape {
        ModelShape {
            name: "Llama-3-8B".into(),
            vocab: 128_256,
            ..ModelShape::mistral_7b()
        }
    }

    /// Llama-3-70B: 80 layers, hidden 8192, 64 query / 8 KV heads of 128, SwiGLU 28672,
    /// vocab 128,256, untied; f16.
    pub fn llama_3_70b() -> ModelShape {
        ModelShape {
            name: "Llama-3-70B".into(),
            layers: 80,
            hidden: 8192,
            heads: 64,
            kv_heads: 8,
            head_dim: 128,
            ffn_hidden: 28672,
            ffn_kind: FfnKind::Gated,
            experts: 1,
            experts_per_token: 1,
            vocab: 128_256,
            tied_embeddings: false,
            dtypes: Dtypes::uniform(Dtype::F16),
        }
    }

    /// Mixtral-8x7B: Mistral-7B's attention with 8 SwiGLU experts of 14336 per layer, top-2
    /// routing, vocab 32000, untied; f16.
    pub fn mixtral_8x7b() -> ModelShape {
        ModelShape {
            name: "Mixtral-8x7B".into(),
            experts: 8,
            experts_per_token: 2,
            ..ModelShape::mistral_7b()
        }
    }

    /// The four presets, in the order listed in `docs/model.md`.
    pub fn presets() -> Vec<ModelShape> {
        vec![
            ModelShape::mistral_7b(),
            ModelShape::llama_3_8b(),
            ModelShape::mixtral_8x7b(),
            ModelShape::llama_3_70b(),
        ]
    }

    /// The same architecture run with other element types.
    pub fn with_dtypes(mut self, dtypes: Dtypes) -> ModelShape {
        self.dtypes = dtypes;
        self
    }

    /// Checks what every formula relies on: all sizes at least 1, query heads a multiple of
    /// KV heads, `experts_per_token` between 1 and `experts`.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |reason: String| ModelError::InvalidShape {
            model: self.name.clone(),
            reason,
        };
        for (field, value) in [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("heads", self.heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("ffn_hidden", self.ffn_hidden),
            ("experts", self.experts),
            ("experts_per_token", self.experts_per_token),
            ("vocab", self.vocab),
        ] {
            if value == 0 {
                return Err(invalid(format!("{field} must be at least 1, found 0")));
            }
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(invalid(format!(
                "heads ({}) must be a multiple of kv_heads ({})",
                self.heads, self.kv_heads
            )));
        }
        // Every count below is then exact in u64 and in f64, whatever the fields.
        let largest_exact = 2f64.powi(53);
        let (l, h, e) = (self.layers as f64, self.hidden as f64, self.experts as f64);
        let per_layer = 2.0 * h * (self.heads + self.kv_heads) as f64 * self.head_dim as f64
            + e * self.ffn_kind.matrices() as f64 * h * self.ffn_hidden as f64
            + h * e
            + 2.0 * h;
        let total = l * per_layer + 2.0 * self.vocab as f64 * h + h;
        if total > largest_exact {
            return Err(invalid(format!(
                "{total:e} parameters is beyond the 2^53 that are counted exactly"
            )));
        }
        if self.experts_per_token > self.experts {
            return Err(invalid(format!(
                "experts_per_token ({}) exceeds experts ({})",
                self.experts_per_token, self.experts
            )));
        }
        Ok(())
    }

    /// Whether the FFNs are a mixture of experts (more than one expert per layer).
    pub fn is_moe(&self) -> bool {
        self.experts > 1
    }

    /// Q, K, V, O weights of one layer: Q and O are hidden×(heads·head_dim), K and V are
    /// hidden×(kv_heads·head_dim).
    pub fn attention_weights_per_layer(&self) -> u64 {
        2 * self.hidden * self.heads * self.head_dim
            + 2 * self.hidden * self.kv_heads * self.head_dim
    }

    /// Weights of one expert's FFN (of the layer's FFN for a dense model).
    pub fn ffn_weights_per_expert(&self) -> u64 {
        self.ffn_kind.matrices() * self.hidden * self.ffn_hidden
    }

    /// Router weights of one layer: hidden·experts, none for a dense model.
    pub fn router_weights_per_layer(&self) -> u64 {
        if self.is_moe() {
            self.hidden * self.experts
        } else {
            0
        }
    }

    /// Parameters of one layer that every token uses: attention, router and the two norms
    /// (everything but the expert FFNs).
    pub fn shared_weights_per_layer(&self) -> u64 {
        self.attention_weights_per_layer() + self.router_weights_per_layer() + 2 * self.hidden
    }

    /// Where the parameters sit; see `docs/model.md` for the formula and the published counts
    /// it reproduces. For a shape that passes [`ModelShape::validate`] (every shape this crate
    /// builds or reads does), no count overflows.
    pub fn parameters(&self) -> ParameterCount {
        let embedding = self.vocab * self.hidden;
        let lm_head = if self.tied_embeddings { 0 } else { embedding };
        let attention = self.layers * self.attention_weights_per_layer();
        let ffn = self.layers * self.experts * self.ffn_weights_per_expert();
        let router = self.layers * self.router_weights_per_layer();
        let norms = (2 * self.layers + 1) * self.hidden;
        let matmul_per_token = attention
            + router
            + self.layers * self.experts_per_token * self.ffn_weights_per_expert()
            + self.vocab * self.hidden;
        ParameterCount {
            embedding,
            lm_head,
            attention,
            ffn,
            router,
            norms,
            total: embedding + lm_head + attention + ffn + router + norms,
            matmul_per_token,
        }
    }

    /// Bytes of keys and values one token adds to the cache: 2 (K and V) · layers ·
    /// kv_heads · head_dim · kv element size.
    pub fn kv_bytes_per_token(&self) -> f64 {
        (2 * self.layers * self.kv_heads * self.head_dim) as f64 * self.dtypes.kv.size_bytes()
    }

    /// Reads a shape from the text of a Hugging Face `config.json`.
    ///
    /// Required: `num_hidden_layers`, `hidden_size`, `num_attention_heads`, `intermediate_size`,
    /// `vocab_size`, and `model_type` one of `llama`, `mistral`, `mixtral` (the family whose
    /// parameters the formulas count exactly; all three use a gated SwiGLU FFN). Optional:
    /// `num_key_value_heads` (default `num_attention_heads`), `head_dim` (default
    /// hidden_size / num_attention_heads, which must divide), `num_local_experts` and
    /// `num_experts_per_tok` (default 1: dense), `tie_word_embeddings` (default false, the
    /// default of these three config classes). `attention_bias` or `mlp_bias` set to true is
    /// rejected: biases are not counted.
    pub fn from_hf_config(
        name: &str,
        json_text: &str,
        dtypes: Dtypes,
    ) -> Result<ModelShape, ModelError> {
        let root: Value = serde_json::from_str(json_text).map_err(|e| ModelError::Config {
            path: "$".into(),
            expected: "a JSON object".into(),
            found: format!("invalid JSON ({e})"),
        })?;
        let Value::Object(fields) = &root else {
            return Err(config_error("$", "a JSON object", &root));
        };
        let model_type = match fields.get("model_type") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => return Err(config_error("model_type", "a string", other)),
            None => {
                return Err(missing(
                    "model_type",
                    "\"llama\", \"mistral\" or \"mixtral\"",
                ));
            }
        };
        if !matches!(model_type, "llama" | "mistral" | "mixtral") {
            return Err(ModelError::Config {
                path: "model_type".into(),
                expected: "\"llama\", \"mistral\" or \"mixtral\" (the architectures whose parameters are counted exactly)".into(),
                found: format!("{model_type:?}"),
            });
        }
        for bias in ["attention_bias", "mlp_bias"] {
            match fields.get(bias) {
                None | Some(Value::Bool(false)) | Some(Value::Null) => {}
                Some(other) => {
                    return Err(config_error(
                        bias,
                        "false or absent (biases are not counted)",
                        other,
                    ));
                }
            }
        }
        let layers = required_count(fields, "num_hidden_layers")?;
        let hidden = required_count(fields, "hidden_size")?;
        let heads = required_count(fields, "num_attention_heads")?;
        let ffn_hidden = required_count(fields, "intermediate_size")?;
        let vocab = required_count(fields, "vocab_size")?;
        let kv_heads = optional_count(fields, "num_key_value_heads")?.unwrap_or(heads);
        let head_dim = match optional_count(fields, "head_dim")? {
            Some(d) => d,
            None if hidden.is_multiple_of(heads) => hidden / heads,
            None => {
                return Err(ModelError::Config {
                    path: "head_dim".into(),
                    expected: format!(
                        "present, since hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads})"
                    ),
                    found: "missing".into(),
                });
            }
        };
        let experts = optional_count(fields, "num_local_experts")?.unwrap_or(1);
        let experts_per_token = optional_count(fields, "num_experts_per_tok")?.unwrap_or(1);
        let tied_embeddings = match fields.get("tie_word_embeddings") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(config_error("tie_word_embeddings", "true or false", other)),
        };
        let shape = ModelShape {
            name: name.into(),
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            ffn_hidden,
            ffn_kind: FfnKind::Gated,
            experts,
            experts_per_token,
            vocab,
            tied_embeddings,
            dtypes,
        };
        shape.validate()?;
        Ok(shape)
    }
}

fn config_error(path: &str, expected: &str, found: &Value) -> ModelError {
    ModelError::Config {
        path: path.into(),
        expected: expected.into(),
        found: found.to_string(),
    }
}

fn missing(path: &str, expected: &str) -> ModelError {
    ModelError::Config {
        path: path.into(),
        expected: expected.into(),
        found: "missing".into(),
    }
}

fn optional_count(
    fields: &serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<u64>, ModelError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            _ => Err(config_error(key, "a positive integer", value)),
        },
    }
}

fn required_count(fields: &serde_json::Map<String, Value>, key: &str) -> Result<u64, ModelError> {
    optional_count(fields, key)?.ok_or_else(|| missing(key, "a positive integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published parameter counts of the four checkpoints. Exact: the formula counts the same
    /// tensors the checkpoints hold.
    #[test]
    fn parameter_counts_match_published_totals() {
        for (shape, published) in [
            (ModelShape::mistral_7b(), 7_241_732_096u64),
            (ModelShape::llama_3_8b(), 8_030_261_248),
            (ModelShape::mixtral_8x7b(), 46_702_792_704),
            (ModelShape::llama_3_70b(), 70_553_706_496),
        ] {
            assert_eq!(shape.parameters().total, published, "{}", shape.name);
        }
    }

    #[test]
    fn mistral_parameter_breakdown_by_hand() {
        // attention per layer: 2·4096·4096 (Q, O) + 2·4096·1024 (K, V) = 41,943,040
        // FFN per layer: 3·4096·14336 = 176,160,768; norms 2·4096 = 8,192
        // layer = 218,112,000; 32 layers = 6,979,584,000
        // embedding = lm_head = 32000·4096 = 131,072,000; final norm 4096
        // total = 6,979,584,000 + 262,144,000 + 4,096 = 7,241,732,096
        let p = ModelShape::mistral_7b().parameters();
        assert_eq!(p.attention, 32 * 41_943_040);
        assert_eq!(p.ffn, 32 * 176_160_768);
        assert_eq!(p.norms, 65 * 4096);
        assert_eq!(p.embedding, 131_072_000);
        assert_eq!(p.lm_head, 131_072_000);
        assert_eq!(p.router, 0);
        // matmul per token: 32·(41,943,040 + 176,160,768) + 131,072,000 = 7,110,393,856
        assert_eq!(p.matmul_per_token, 7_110_393_856);
    }

    #[test]
    fn mixtral_active_parameters_by_hand() {
        // per layer: attention 41,943,040 + router 4096·8 = 32,768 + 2 experts · 176,160,768
        // = 394,297,344; 32 layers = 12,617,515,008; + lm_head 131,072,000 = 12,748,587,008
        let p = ModelShape::mixtral_8x7b().parameters();
        assert_eq!(p.router, 32 * 32_768);
        assert_eq!(p.matmul_per_token, 12_748_587_008);
    }

    #[test]
    fn tied_embeddings_drop_the_output_projection() {
        let tied = ModelShape {
            tied_embeddings: true,
            ..ModelShape::mistral_7b()
        };
        assert_eq!(tied.parameters().lm_head, 0);
        assert_eq!(tied.parameters().total, 7_241_732_096 - 131_072_000);
        // The output projection is still a matmul every token goes through.
        assert_eq!(
            tied.parameters().matmul_per_token,
            ModelShape::mistral_7b().parameters().matmul_per_token
        );
    }

    #[test]
    fn plain_mlp_counts_two_matrices() {
        let plain = ModelShape {
            ffn_kind: FfnKind::Plain,
            ..ModelShape::mistral_7b()
        };
        // one matrix of 4096·14336 = 58,720,256 fewer per layer
        assert_eq!(
            ModelShape::mistral_7b().parameters().total - plain.parameters().total,
            32 * 58_720_256
        );
    }

    #[test]
    fn kv_bytes_per_token_mistral_f16() {
        // 2 · 32 layers · 8 kv heads · 128 · 2 bytes = 131,072
        assert_eq!(ModelShape::mistral_7b().kv_bytes_per_token(), 131_072.0);
    }

    const MIXTRAL_CONFIG: &str = r#"{
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
        "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
        "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8,
        "num_experts_per_tok": 2, "vocab_size": 32000, "tie_word_embeddings": false,
        "torch_dtype": "bfloat16"
    }"#;

    #[test]
    fn hf_config_reproduces_the_preset() {
        let shape =
            ModelShape::from_hf_config("Mixtral-8x7B", MIXTRAL_CONFIG, Dtypes::uniform(Dtype::F16))
                .unwrap();
        assert_eq!(shape, ModelShape::mixtral_8x7b());
    }

    #[test]
    fn hf_config_of_llama_3_8b_ignores_unrelated_fields() {
        // The fields of Meta-Llama-3-8B's config.json that matter, with some that do not.
        let text = r#"{"architectures": ["LlamaForCausalLM"], "attention_bias": false,
            "bos_token_id": 128000, "hidden_act": "silu", "hidden_size": 4096,
            "intermediate_size": 14336, "max_position_embeddings": 8192, "model_type": "llama",
            "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
            "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": false,
            "torch_dtype": "bfloat16", "vocab_size": 128256}"#;
        let shape =
            ModelShape::from_hf_config("Llama-3-8B", text, Dtypes::uniform(Dtype::F16)).unwrap();
        assert_eq!(shape, ModelShape::llama_3_8b());
        assert_eq!(shape.parameters().total, 8_030_261_248);
    }

    #[test]
    fn hf_config_defaults_for_dense_mha() {
        let text = r#"{"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64,
            "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}"#;
        let shape = ModelShape::from_hf_config("tiny", text, Dtypes::uniform(Dtype::F32)).unwrap();
        assert_eq!((shape.kv_heads, shape.head_dim), (4, 16));
        assert_eq!((shape.experts, shape.experts_per_token), (1, 1));
        assert!(!shape.tied_embeddings);
    }

    #[test]
    fn hf_config_errors_name_the_field() {
        let f16 = Dtypes::uniform(Dtype::F16);
        let err = |text: &str| {
            ModelShape::from_hf_config("x", text, f16)
                .unwrap_err()
                .to_string()
        };
        let no_layers = MIXTRAL_CONFIG.replace("\"num_hidden_layers\": 32,", "");
        assert_eq!(
            err(&no_layers),
            "config.json `num_hidden_layers`: expected a positive integer, found missing"
        );
        let string_hidden =
            MIXTRAL_CONFIG.replace("\"hidden_size\": 4096", "\"hidden_size\": \"4096\"");
        assert_eq!(
            err(&string_hidden),
            "config.json `hidden_size`: expected a positive integer, found \"4096\""
        );
        let zero_heads =
            MIXTRAL_CONFIG.replace("\"num_attention_heads\": 32", "\"num_attention_heads\": 0");
        assert!(err(&zero_heads).contains("`num_attention_heads`"));
        let gpt2 = MIXTRAL_CONFIG.replace("\"mixtral\"", "\"gpt2\"");
        assert!(err(&gpt2).contains("`model_type`") && err(&gpt2).contains("\"gpt2\""));
        let biased = MIXTRAL_CONFIG.replace(
            "\"torch_dtype\"",
            "\"attention_bias\": true, \"torch_dtype\"",
        );
        assert!(err(&biased).contains("`attention_bias`"));
        assert!(err("[1, 2]").contains("`$`"));
        assert!(err("{not json").contains("invalid JSON"));
        let uneven = r#"{"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 60,
            "num_attention_heads": 8, "intermediate_size": 128, "vocab_size": 100}"#;
        assert!(err(uneven).contains("`head_dim`"));
        let too_many_active =
            MIXTRAL_CONFIG.replace("\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 9");
        assert_eq!(
            err(&too_many_active),
            "model shape `x`: experts_per_token (9) exceeds experts (8)"
        );
    }

    #[test]
    fn validate_rejects_inconsistent_shapes() {
        let bad = ModelShape {
            kv_heads: 7,
            ..ModelShape::mistral_7b()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("multiple of kv_heads")
        );
        let empty = ModelShape {
            layers: 0,
            ..ModelShape::mistral_7b()
        };
        assert!(
            empty
                .validate()
                .unwrap_err()
                .to_string()
                .contains("layers must be at least 1")
        );
        for shape in ModelShape::presets() {
            shape.validate().unwrap();
        }
        // A config with absurd sizes is rejected rather than overflowing the counts.
        let huge = ModelShape {
            hidden: u64::MAX / 2,
            ..ModelShape::mistral_7b()
        };
        assert!(huge.validate().unwrap_err().to_string().contains("2^53"));
    }
}
